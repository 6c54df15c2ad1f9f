// Warden console: progressive enhancement only; every page works without this file.
"use strict";

function tickCountdowns() {
  for (const cell of document.querySelectorAll(".countdown")) {
    let left = Number(cell.dataset.seconds);
    if (!Number.isFinite(left)) continue;
    left = Math.max(0, left - 1);
    cell.dataset.seconds = String(left);
    const m = Math.floor(left / 60), s = left % 60;
    cell.textContent = left > 0 ? (m ? `${m} min ${s} s` : `${s} s`) : "expired";
  }
}

async function refresh(body) {
  try {
    const response = await fetch(body.dataset.refresh, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || !response.ok) return;  // signed out or failing: keep what is shown
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    body.replaceChildren(template.content);
  } catch (_) { /* offline for a moment: try again next tick */ }
}

document.addEventListener("DOMContentLoaded", () => {
  setInterval(tickCountdowns, 1000);
  for (const body of document.querySelectorAll("[data-refresh]")) {
    setInterval(() => refresh(body), 2000);
  }
});
