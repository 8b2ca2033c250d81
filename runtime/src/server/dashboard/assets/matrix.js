// A job's runs matrix (Airflow's grid): rows are tasks, columns the last runs (newest
// right), each cell the task's state in that run, linking to it. Rows are virtualised:
// 10,000 tasks × 100 runs draw only the rows in view.
"use strict";

/// Runs shown unless the page says otherwise (`?runs=N`, at most 100).
const MATRIX_RUNS = 25;

sluice.pages.matrix = async function (main, jobId, params) {
  const limit = Math.min(100, Number(params.get("runs")) || MATRIX_RUNS);
  const controller = new AbortController();
  sluice.onLeave(() => controller.abort());
  const title = h("h1", {}, "Runs of job " + jobId);
  const headRow = h("div", { class: "matrix-head", "aria-label": "Runs, oldest first" });
  const filter = h("input", { type: "search", id: "matrix-filter", placeholder: "Filter tasks", "aria-label": "Filter tasks by key" });
  const count = h("span", { class: "muted" });
  const scroller = h("div", { class: "scroller", id: "matrix", role: "grid", "aria-label": "Task states by run" });
  main.replaceChildren(title,
    h("div", { class: "bar" }, filter, count,
      h("label", { class: "inline", for: "matrix-runs" }, "runs"),
      h("select", { id: "matrix-runs", onchange: (e) => { location.hash = "#/jobs/" + jobId + "/matrix?runs=" + e.target.value; } },
        [10, 25, 50, 100].map((n) => h("option", { value: n, selected: n === limit }, String(n))))),
    headRow, scroller, h("h2", {}, "Legend"), legend());
  let data = null;
  let shown = [];

  function render() {
    const runs = data.runs.slice().reverse();
    const cells = data.cells.slice().reverse();
    headRow.replaceChildren(...runs.map((r) => h("a", {
      class: "st-" + runLetter(r), href: "#/runs/" + r.run_id, title: "run " + r.run_id + ": " + runLabel(r) + " · " + fmtTime(r.created_at),
      "aria-label": "run " + r.run_id + ": " + runLabel(r),
    })));
    const needle = filter.value.toLowerCase();
    shown = [];
    data.tasks.forEach((k, i) => { if (!needle || k.toLowerCase().includes(needle)) shown.push(i); });
    count.textContent = shown.length + " tasks × " + runs.length + " runs";
    virtualRows(scroller, shown.length, 22, (r) => {
      const ti = shown[r];
      const key = data.tasks[ti];
      return h("div", { class: "row", role: "row" },
        h("span", { class: "label", role: "rowheader", title: key }, key),
        h("div", { class: "cells" }, runs.map((run, c) => {
          const letter = cells[c][ti] || "-";
          return h("a", {
            class: "cell st-" + letter, role: "gridcell", href: "#/runs/" + run.run_id + "?task=" + encodeURIComponent(key),
            "data-run": run.run_id, "data-task": key, "data-state": letter,
            title: key + " in run " + run.run_id + ": " + STATE_NAMES[letter], "aria-label": key + " in run " + run.run_id + ": " + STATE_NAMES[letter],
          });
        })));
    });
  }

  async function load() {
    data = await sluice.api("/api/sluice/v1/dashboard/jobs/" + jobId + "/matrix?limit=" + limit, { signal: controller.signal });
    title.textContent = data.job ? "Runs of " + data.job : "Runs of job " + jobId + " (no runs yet)";
    render();
  }
  filter.addEventListener("input", render);
  await load();
  // keep the matrix current: often while a run goes on, now and then for new runs
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
    const live = data.runs.some((r) => !r.result);
    if (!document.hidden && (live || ticks % 5 === 0)) load().catch(() => {});
  }, 3000);
  sluice.onLeave(() => clearInterval(timer));
};
