// The three views of a run: its DAG (levels left to right, only the part in view drawn),
// a timeline of attempts (one row per task, virtualised) and a filterable task list.
"use strict";

const COL_W = 200, NODE_W = 160, ROW_H = 40, NODE_H = 30, PAD = 12;
/// Edges drawn at most per frame (a node in view may have thousands of upstreams).
const MAX_EDGES = 4000;

/// Levels of the run's tasks (for_each iterations folded into their task).
function layoutRun(run) {
  const tasks = run.tasks;
  const nodeOf = new Map();
  const nodes = [];
  const folded = new Map();
  tasks.forEach((t, i) => {
    if (t.p) {
      if (!folded.has(t.p)) folded.set(t.p, []);
      folded.get(t.p).push(i);
    } else {
      nodeOf.set(i, nodes.length);
      nodes.push(i);
    }
  });
  const deps = nodes.map((ti) => tasks[ti].d
    .map((d) => (Array.isArray(d) ? { from: nodeOf.get(d[0]), branch: d[1] } : { from: nodeOf.get(d) }))
    .filter((e) => e.from !== undefined));
  const indeg = deps.map((ds) => ds.length);
  const down = nodes.map(() => []);
  deps.forEach((ds, n) => ds.forEach((e) => down[e.from].push(n)));
  const level = new Array(nodes.length).fill(0);
  const queue = [];
  indeg.forEach((d, n) => { if (d === 0) queue.push(n); });
  for (let qi = 0; qi < queue.length; qi++) {
    const n = queue[qi];
    for (const m of down[n]) {
      level[m] = Math.max(level[m], level[n] + 1);
      if (--indeg[m] === 0) queue.push(m);
    }
  }
  const levels = [];
  const row = new Array(nodes.length);
  level.forEach((l, n) => {
    while (levels.length <= l) levels.push([]);
    row[n] = levels[l].length;
    levels[l].push(n);
  });
  const byKey = new Map(nodes.map((ti, n) => [tasks[ti].k, n]));
  return { nodes, deps, level, row, levels, folded, byKey, count: tasks.length };
}

function nodeLabel(run, layout, n) {
  const t = run.tasks[layout.nodes[n]];
  const its = layout.folded.get(t.k);
  if (!its) return t.k;
  const done = its.filter((i) => "sckxu".includes(run.tasks[i].s)).length;
  const failed = its.filter((i) => run.tasks[i].s === "f").length;
  return t.k + " [" + done + "/" + its.length + (failed ? ", " + failed + " failed" : "") + "]";
}

/// The DAG in `scroller`; `select(key)` when a node is chosen.
function drawGraph(scroller, view, select) {
  const spacer = h("div", { class: "spacer" });
  const layer = h("div", { class: "layer" });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "edges");
  svg.setAttribute("aria-hidden", "true");
  scroller.replaceChildren(spacer, svg, layer);
  let queued = false;
  function size() {
    const { levels } = view.layout;
    spacer.style.width = levels.length * COL_W + PAD + "px";
    spacer.style.height = Math.max(...levels.map((l) => l.length), 1) * ROW_H + PAD + "px";
  }
  function draw() {
    queued = false;
    const { run, layout } = view;
    const x0 = scroller.scrollLeft, y0 = scroller.scrollTop;
    const w = scroller.clientWidth, hgt = scroller.clientHeight;
    const l0 = Math.max(0, Math.floor(x0 / COL_W) - 1), l1 = Math.min(layout.levels.length, Math.ceil((x0 + w) / COL_W) + 1);
    const r0 = Math.max(0, Math.floor(y0 / ROW_H) - 2), r1 = Math.ceil((y0 + hgt) / ROW_H) + 2;
    const nodes = [];
    const paths = [];
    let edges = 0;
    const pos = (n) => [PAD + layout.level[n] * COL_W, PAD + layout.row[n] * ROW_H];
    for (let l = l0; l < l1; l++) {
      const lvl = layout.levels[l];
      for (let r = r0; r < Math.min(r1, lvl.length); r++) {
        const n = lvl[r];
        const t = run.tasks[layout.nodes[n]];
        const [x, y] = pos(n);
        const label = nodeLabel(run, layout, n);
        const b = h("button", {
          type: "button", class: "node st-" + t.s, "data-key": t.k, "data-state": t.s,
          "aria-pressed": String(view.selected === t.k), title: label + ": " + STATE_NAMES[t.s],
          "aria-label": label + ", " + STATE_NAMES[t.s],
          onclick: () => select(t.k),
        }, label);
        b.style.left = x + "px";
        b.style.top = y + "px";
        nodes.push(b);
        for (const e of layout.deps[n]) {
          if (edges++ > MAX_EDGES) break;
          const [fx, fy] = pos(e.from);
          const sx = fx + NODE_W - x0, sy = fy + NODE_H / 2 - y0, ex = x - x0, ey = y + NODE_H / 2 - y0;
          const mx = (sx + ex) / 2;
          paths.push(`<path d="M${sx},${sy} C${mx},${sy} ${mx},${ey} ${ex},${ey}"/>`);
          if (e.branch !== undefined) paths.push(`<text x="${ex - 34}" y="${ey - 4}">${e.branch}</text>`);
        }
      }
    }
    svg.style.transform = `translate(${x0}px, ${y0}px)`;
    svg.setAttribute("width", w);
    svg.setAttribute("height", hgt);
    svg.innerHTML = paths.join("");
    layer.replaceChildren(...nodes);
  }
  scroller.addEventListener("scroll", () => { if (!queued) { queued = true; requestAnimationFrame(draw); } });
  size();
  draw();
  return {
    redraw() { size(); draw(); },
    reveal(key) {
      const n = view.layout.byKey.get(key);
      if (n === undefined) return;
      scroller.scrollLeft = Math.max(0, view.layout.level[n] * COL_W - 40);
      scroller.scrollTop = Math.max(0, view.layout.row[n] * ROW_H - 80);
      draw();
    },
  };
}

/// The timeline: tasks that started, by first start; bars per attempt, waits between.
function drawTimeline(scroller, view, select) {
  const { run } = view;
  const started = run.tasks.map((t, i) => i).filter((i) => run.tasks[i].a.length);
  started.sort((a, b) => run.tasks[a].a[0][0] - run.tasks[b].a[0][0]);
  const t0 = run.created_at;
  let t1 = run.finished_at || Date.now();
  for (const i of started) for (const a of run.tasks[i].a) t1 = Math.max(t1, a[1] || Date.now());
  const span = Math.max(1, t1 - t0);
  const pct = (t) => ((t - t0) / span) * 100 + "%";
  if (!started.length) {
    scroller.replaceChildren(h("p", { class: "muted" }, "No attempt has started yet."));
    return { redraw() {} };
  }
  return virtualRows(scroller, started.length, 28, (r) => {
    const t = run.tasks[started[r]];
    const track = h("div", { class: "gantt-track" });
    let prevEnd = null;
    t.a.forEach((a, n) => {
      if (prevEnd !== null && a[0] > prevEnd) {
        const wait = h("div", { class: "wait", title: "waited " + fmtDuration(a[0] - prevEnd) });
        wait.style.left = pct(prevEnd);
        wait.style.width = ((a[0] - prevEnd) / span) * 100 + "%";
        track.append(wait);
      }
      const end = a[1] || Date.now();
      const seg = h("div", { class: "seg st-" + a[2], title: `${t.k} attempt ${n}: ${STATE_NAMES[a[2]]}, ${fmtDuration(end - a[0])}` });
      seg.style.left = pct(a[0]);
      seg.style.width = ((end - a[0]) / span) * 100 + "%";
      track.append(seg);
      prevEnd = end;
    });
    return h("div", { class: "row" },
      h("button", { type: "button", class: "label", onclick: () => select(t.k) }, t.k), track);
  });
}

/// Every task, filterable by key and state; rows virtualised.
function drawTaskList(container, view, select) {
  const { run } = view;
  const filter = h("input", { type: "search", id: "task-filter", placeholder: "Filter by key", "aria-label": "Filter tasks by key", value: view.filter || "" });
  const states = h("select", { "aria-label": "Filter tasks by state" },
    h("option", { value: "" }, "any state"),
    Object.entries(STATE_NAMES).filter(([l]) => l !== "-").map(([l, name]) => h("option", { value: l, selected: view.stateFilter === l }, name)));
  const scroller = h("div", { class: "scroller" });
  const count = h("span", { class: "muted" });
  container.replaceChildren(h("div", { class: "bar" }, filter, states, count), scroller);
  function apply() {
    view.filter = filter.value;
    view.stateFilter = states.value;
    const needle = filter.value.toLowerCase();
    const shown = [];
    run.tasks.forEach((t, i) => {
      if ((!needle || t.k.toLowerCase().includes(needle)) && (!states.value || t.s === states.value)) shown.push(i);
    });
    count.textContent = shown.length + " of " + run.tasks.length + " tasks";
    virtualRows(scroller, shown.length, 28, (r) => {
      const t = run.tasks[shown[r]];
      const last = t.a[t.a.length - 1];
      return h("div", { class: "row" },
        h("button", { type: "button", class: "label", onclick: () => select(t.k) }, t.k),
        pill(t.s),
        h("span", { class: "muted" }, t.a.length + " attempt" + (t.a.length === 1 ? "" : "s")),
        h("span", { class: "muted" }, last ? fmtDuration((last[1] || Date.now()) - last[0]) : ""));
    });
  }
  filter.addEventListener("input", apply);
  states.addEventListener("change", apply);
  apply();
  return { redraw: apply };
}
