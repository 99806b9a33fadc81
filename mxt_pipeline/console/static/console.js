// MXT operations console: client-side sorting of tables, "select all", live job status.
// Served by the console itself (the Content-Security-Policy allows no inline script).
"use strict";

function cellValue(td, numeric) {
  const raw = td.dataset.value !== undefined ? td.dataset.value : td.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  const v = parseFloat(raw.replace(/[^0-9eE+\-.]/g, ""));
  return Number.isNaN(v) ? -Infinity : v;
}

function makeSortable(table) {
  const heads = table.tHead.rows[0].cells;
  Array.from(heads).forEach((th, col) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.type === "num";
      const asc = !th.classList.contains("asc");
      Array.from(heads).forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(asc ? "asc" : "desc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = cellValue(a.cells[col], numeric), y = cellValue(b.cells[col], numeric);
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach((r) => body.appendChild(r));
    });
  });
}

function fmtDuration(s) {
  if (s < 60) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
}

function pollJob(box) {
  const id = box.dataset.job;
  const stateEl = document.getElementById("job-state");
  const tick = async () => {
    let doc;
    try {
      const resp = await fetch("/api/jobs/" + encodeURIComponent(id), { credentials: "same-origin" });
      if (!resp.ok) return setTimeout(tick, 3000);
      doc = await resp.json();
    } catch (e) {
      return setTimeout(tick, 3000);
    }
    if (doc.state !== "QUEUED" && doc.state !== "RUNNING") {
      window.location.reload();  // the server renders the outcome and the diff
      return;
    }
    stateEl.textContent = doc.state;
    document.getElementById("job-elapsed").textContent = fmtDuration(doc.elapsed_s);
    const list = document.getElementById("job-progress");
    if (list && doc.progress && doc.progress.length) {
      list.replaceChildren(...doc.progress.map((b) => {
        const li = document.createElement("li");
        const badge = document.createElement("span");
        badge.className = "badge " + (b.status === "SUCCESS" ? "ok" : b.status === "RUNNING" ? "run" : "bad");
        badge.textContent = b.status;
        li.append(badge, " " + b.name + " ");
        const t = document.createElement("span");
        t.className = "muted";
        t.textContent = b.elapsed_s != null ? fmtDuration(b.elapsed_s) : "";
        li.append(t);
        return li;
      }));
    }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => {
    document.querySelectorAll("input.pick").forEach((c) => { c.checked = all.checked; });
  });
  const job = document.getElementById("job");
  if (job && job.dataset.active === "yes") pollJob(job);
});
