// Keyboard shortcuts for the approval queue and a batch's review; `?` lists them.
//
// Lists of items are tables inside [data-shortcut-items]: j/k (or the arrows, once on a list) move
// the focus between their rows. Controls carry the key that works them: <button data-shortcut="a"
// data-shortcut-help="Approve"> is clicked, so it goes through its own form (and data-confirm's
// question, and the server's checks) exactly as a click would; a <form data-shortcut="r"> gets the
// focus on its first field, for the person to fill in and send. On a batch's review, n/p go to the
// next or previous batch of the approval queue (read from [data-shortcut-queue], the queue's own
// fragment, so the order is the queue's). Nothing fires while typing.
"use strict";

const TYPING = "input, textarea, select, [contenteditable]:not([contenteditable='false'])";

function items() {
  // Table rows, less the "nothing here" row that spans the table.
  return [...document.querySelectorAll("[data-shortcut-items] tbody tr")].filter(
    (row) => !row.querySelector("td[colspan]")
  );
}

function currentIndex(rows) {
  const focused = document.activeElement && document.activeElement.closest("tr");
  const index = rows.indexOf(focused);
  return index >= 0 ? index : rows.findIndex((row) => row.classList.contains("kb-current"));
}

function mark(row) {
  document.querySelectorAll("tr.kb-current").forEach((other) => other.classList.remove("kb-current"));
  if (row) row.classList.add("kb-current");
}

function move(step) {
  const rows = items();
  if (!rows.length) return;
  const current = currentIndex(rows);
  const row = rows[current < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, current + step))];
  const link = row.querySelector("a[href]");
  if (!link) row.tabIndex = -1;
  (link || row).focus();
  mark(row);
  row.scrollIntoView({ block: "nearest" });
}

function open() {
  const rows = items();
  const row = rows[currentIndex(rows)];
  const link = row && row.querySelector("a[href]");
  if (link) link.click();
}

function act(key) {
  const control = document.querySelector(`[data-shortcut="${key}"]`);
  if (!control) return false;
  if (control instanceof HTMLFormElement) {
    const field = control.querySelector("textarea, select, input:not([type=hidden])") || control.querySelector("button");
    if (field) field.focus();
    return true;
  }
  // A box the person must tick first (positions changed since drafting) gets the focus, not a tick.
  const unticked = control.form && control.form.querySelector("input[type=checkbox]:not(:checked)");
  if (unticked) {
    unticked.focus();
    return true;
  }
  control.click();
  return true;
}

async function neighbour(step) {
  const queue = document.querySelector("[data-shortcut-queue]");
  let rows = [];
  try {
    const answer = await fetch(queue.dataset.shortcutQueue, { credentials: "same-origin" });
    const page = new DOMParser().parseFromString(answer.ok ? await answer.text() : "", "text/html");
    rows = [...page.querySelectorAll("tr[data-batch]")];
  } catch (error) {
    // Offline for a moment: the queue's page is the way on.
  }
  const here = rows.findIndex((row) => row.dataset.batch === queue.dataset.current);
  // A batch already decided has left the queue: its next is the queue's first.
  const row = here < 0 ? rows[0] : rows[here + step];
  const link = row && row.querySelector("a[href]");
  window.location.assign(link ? link.getAttribute("href") : queue.getAttribute("href"));
}

function entry(list, keys, what) {
  const term = document.createElement("dt");
  keys.forEach((key, n) => {
    if (n) term.append(" or ");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    term.append(kbd);
  });
  const description = document.createElement("dd");
  description.textContent = what;
  list.append(term, description);
}

function helpDialog() {
  let dialog = document.getElementById("shortcut-help");
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "shortcut-help";
  dialog.className = "shortcuts";
  dialog.setAttribute("aria-labelledby", "shortcut-help-title");
  const title = document.createElement("h2");
  title.id = "shortcut-help-title";
  title.textContent = "Keyboard shortcuts";
  const list = document.createElement("dl");
  if (document.querySelector("[data-shortcut-items]")) {
    entry(list, ["j", "↓"], "Next item");
    entry(list, ["k", "↑"], "Previous item");
    entry(list, ["Enter", "o"], "Open the item");
  }
  if (document.querySelector("[data-shortcut-queue]")) {
    entry(list, ["n"], "Next batch awaiting approval (the queue when there is none)");
    entry(list, ["p"], "Previous batch awaiting approval");
  }
  document.querySelectorAll("[data-shortcut][data-shortcut-help]").forEach((control) => {
    entry(list, [control.dataset.shortcut], control.dataset.shortcutHelp);
  });
  entry(list, ["?"], "Show or hide this help");
  entry(list, ["Esc"], "Close this help");
  const note = document.createElement("p");
  note.className = "muted small";
  note.textContent = "Shortcuts do nothing while you type in a field.";
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => dialog.close());
  dialog.append(title, list, note, close);
  document.body.append(dialog);
  return dialog;
}

function toggleHelp() {
  const dialog = helpDialog();
  if (dialog.open) dialog.close();
  else dialog.showModal();
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof Element && event.target.closest(TYPING)) return;
  const help = document.getElementById("shortcut-help");
  if (help && help.open && event.key !== "?") return; // the dialog has its own keys (Esc, Tab)
  const onList = document.activeElement && document.activeElement.closest("[data-shortcut-items]");
  let handled = true;
  if (event.key === "?") toggleHelp();
  else if (event.key === "j" || (event.key === "ArrowDown" && onList)) move(1);
  else if (event.key === "k" || (event.key === "ArrowUp" && onList)) move(-1);
  else if (event.key === "o") open();
  else if ((event.key === "n" || event.key === "p") && document.querySelector("[data-shortcut-queue]"))
    neighbour(event.key === "n" ? 1 : -1);
  else if (/^[a-z]$/.test(event.key)) handled = act(event.key);
  else handled = false;
  if (handled) event.preventDefault();
});

// Tabbing or clicking into a list marks the row, so j/k carry on from where the focus is.
document.addEventListener("focusin", (event) => {
  const row = event.target instanceof Element && event.target.closest("[data-shortcut-items] tbody tr");
  if (row) mark(row);
});
