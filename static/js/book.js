// "Sync now": queue a sync, show its progress, and swap in the new snapshot without a full reload.
"use strict";
(() => {
  const form = document.querySelector("form.sync-form");
  if (!form) return;
  const button = form.querySelector("button");
  const progress = form.querySelector(".sync-progress");

  const describe = (runs) => runs.map((run) => {
    const pages = run.total_pages ? `page ${run.pages} of ${run.total_pages}` : `${run.pages} pages`;
    return `${run.account_id}: ${run.status === "running" ? pages : run.status}`;
  }).join(" · ");

  async function refreshBook() {
    const response = await fetch(window.location.href, { headers: { "X-Requested-With": "fetch" } });
    const html = await response.text();
    const fresh = new DOMParser().parseFromString(html, "text/html").querySelector("#book");
    const current = document.querySelector("#book");
    if (fresh && current) current.replaceWith(fresh);
  }

  async function poll(ids) {
    const url = `${form.dataset.statusUrl}?runs=${ids.join(",")}`;
    for (;;) {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`status check failed (${response.status})`);
      const { runs } = await response.json();
      progress.textContent = describe(runs);
      if (runs.every((run) => run.status === "succeeded" || run.status === "failed")) return runs;
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    progress.classList.remove("error");
    progress.textContent = "Queued…";
    try {
      const response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error ? body.error.message : `sync refused (${response.status})`);
      const runs = await poll(body.runs.map((run) => run.id));
      await refreshBook();
      const failed = runs.filter((run) => run.status === "failed");
      progress.textContent = failed.length
        ? `Sync failed for ${failed.map((r) => r.account_id).join(", ")}: ${failed[0].error}`
        : "Book refreshed.";
      if (failed.length) progress.classList.add("error");
    } catch (error) {
      progress.textContent = `Could not sync: ${error.message}`;
      progress.classList.add("error");
    } finally {
      button.disabled = false;
    }
  });
})();
