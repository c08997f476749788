// Small progressive enhancements; every page works without this file (it only adds life to it).
"use strict";

// --- Buttons that ask for confirmation: <button data-confirm="Really?"> -----------------------------
document.addEventListener("click", (event) => {
  const el = event.target.closest("[data-confirm]");
  if (el && !window.confirm(el.dataset.confirm)) event.preventDefault();
});

// --- Countdowns: <time class="countdown" datetime="ISO"> -------------------------------------------
// The market's "now" comes from the server (GET data-clock-url), so a rehearsal clock moved on the
// sandbox moves the countdowns too. Amber within 30 minutes, red within 10, "passed" after.
const WARN_SECONDS = 30 * 60;
const ALERT_SECONDS = 10 * 60;
let serverOffsetMs = 0;

function describe(seconds) {
  if (seconds <= 0) return "passed";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  if (h > 0) return `in ${h} h ${String(m).padStart(2, "0")} min`;
  if (m >= 10) return `in ${m} min`;
  return `in ${m} min ${String(s).padStart(2, "0")} s`;
}

function tick() {
  const now = Date.now() + serverOffsetMs;
  document.querySelectorAll("time.countdown").forEach((el) => {
    const seconds = (Date.parse(el.getAttribute("datetime")) - now) / 1000;
    const state = seconds <= 0 ? "passed" : seconds <= ALERT_SECONDS ? "bad" : seconds <= WARN_SECONDS ? "warn" : "ok";
    el.textContent = describe(seconds);
    el.classList.remove("ok", "warn", "bad", "passed");
    el.classList.add(state);
    el.dataset.state = state;
  });
}

async function syncClock() {
  const url = document.body.dataset.clockUrl;
  if (!url || !document.querySelector("time.countdown")) return;
  try {
    const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (answer.ok) serverOffsetMs = Date.parse((await answer.json()).now) - Date.now();
  } catch (error) {
    // Offline for a moment: the countdowns keep running on the last offset.
  }
  tick();
}

// --- Live regions: <div data-refresh-url="..." data-refresh-seconds="15"> --------------------------
// Swapped for the server's fresh copy, keeping the boxes a person has ticked; not while the focus is
// on a control inside it (a box, a field, a button: the next interval catches up). A focused link is
// found again in the fresh copy, so someone moving through a list by keyboard keeps their place.
async function refresh(region) {
  const active = document.activeElement;
  if (region.contains(active) && active !== region && active.matches("input, select, textarea, button")) return;
  try {
    const answer = await fetch(region.dataset.refreshUrl, { credentials: "same-origin" });
    if (!answer.ok) return;
    const focused = region.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    const checked = new Set(
      [...region.querySelectorAll("input[type=checkbox]:checked")].map((box) => `${box.name}=${box.value}`)
    );
    region.innerHTML = await answer.text();
    region.querySelectorAll("input[type=checkbox]").forEach((box) => {
      if (checked.has(`${box.name}=${box.value}`)) box.checked = true;
    });
    const again = focused && [...region.querySelectorAll("a[href]")].find((a) => a.getAttribute("href") === focused);
    if (again) again.focus();
    region.dataset.refreshedAt = new Date().toISOString();
    tick();
  } catch (error) {
    // A missed refresh is retried at the next interval.
  }
}

function watch(region) {
  const seconds = Number(region.dataset.refreshSeconds || 15);
  if (!region.dataset.watched) {
    region.dataset.watched = "1";
    setInterval(() => refresh(region), seconds * 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach(watch);
  syncClock();
  setInterval(tick, 1000);
  setInterval(syncClock, 5000);
});
