// The worksheet, enhanced: a group loads its rows when opened; select all or none per account (or
// per group, from its table's head); shift-click a second box to select the range between. Without
// this file the page still works: a group's link reloads the page with that group opened.
// Uses refresh() and watch() from app.js (loaded before this file).
"use strict";

const BOXES = "input[type=checkbox][name=position]:not(:disabled)";
let anchor = null; // the value of the last box clicked, where a shift-click's range starts

function loadGroup(group) {
  const rows = group.querySelector("[data-rows]");
  if (!rows || !group.dataset.rowsUrl) return Promise.resolve();
  if (!rows.dataset.refreshUrl) {
    rows.dataset.refreshUrl = group.dataset.rowsUrl;
    rows.loading = rows.hasAttribute("data-loaded") ? Promise.resolve() : refresh(rows);
    rows.loading.then(() => watch(rows));
  }
  return rows.loading;
}

function countSelected() {
  const out = document.getElementById("selection-count");
  if (!out) return;
  const n = document.querySelectorAll("#worksheet-form input[name=position]:checked").length;
  out.textContent = n ? `${n} position${n === 1 ? "" : "s"} selected` : "";
}

function setBoxes(boxes, checked) {
  boxes.forEach((box) => {
    box.checked = checked;
  });
  countSelected();
}

document.addEventListener(
  "toggle",
  (event) => {
    const group = event.target;
    if (group instanceof HTMLDetailsElement && group.open && group.matches("details.ws-group")) loadGroup(group);
  },
  true
);

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-select-account]");
  if (!button) return;
  const section = button.closest("section[data-account]");
  if (button.dataset.selectAccount !== "all") {
    setBoxes(section.querySelectorAll(BOXES), false);
    return;
  }
  button.disabled = true;
  try {
    const groups = [...section.querySelectorAll("details.ws-group")];
    await Promise.all(
      groups.map((group) => {
        group.open = true;
        return loadGroup(group);
      })
    );
    setBoxes(section.querySelectorAll(BOXES), true);
  } finally {
    button.disabled = false;
    button.focus();
  }
});

document.addEventListener("click", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.closest("#worksheet-form")) return;
  if (box.matches("[data-select-group]")) {
    setBoxes(box.closest("table").querySelectorAll(BOXES), box.checked);
    return;
  }
  if (box.name !== "position") return;
  if (event.shiftKey && anchor !== null) {
    const boxes = [...document.querySelectorAll(`#worksheet-form ${BOXES}`)];
    const from = boxes.findIndex((b) => b.value === anchor);
    const to = boxes.indexOf(box);
    if (from >= 0 && to >= 0) setBoxes(boxes.slice(Math.min(from, to), Math.max(from, to) + 1), box.checked);
  }
  anchor = box.value;
  countSelected();
});

document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.classList.add("ws-scripted");
  document.querySelectorAll("details.ws-group[open]").forEach(loadGroup);
  countSelected();
});
