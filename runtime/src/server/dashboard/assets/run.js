// A run's page: header (state, parameters, cancel and repair for who may), its views
// (graph, timeline, tasks), the chosen task's attempts in a side panel, and live states
// from the run's events stream while it is not finished.
"use strict";

/// At most one refresh of the run per this many milliseconds while events arrive.
const REFRESH_EVERY_MS = 300;

/// Read the run's server-sent events with the token (EventSource cannot send one); call
/// `onEvent` for each live (non-history) event; resolves when the stream ends.
async function followEvents(runId, signal, onEvent) {
  const resp = await fetch("/api/sluice/v1/runs/" + runId + "/events", {
    headers: { Authorization: "Bearer " + sluice.token() }, signal,
  });
  if (!resp.ok || !resp.body) return;
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
      if (!data) continue;
      try {
        const item = JSON.parse(data);
        if (!item.history) onEvent(item);
      } catch (_) { /* a keep-alive or a partial line */ }
    }
  }
}

function taskPanel(panel, runId, key, canManage, repairTask) {
  return sluice.api("/api/sluice/v1/dashboard/runs/" + runId + "/tasks/" + encodeURIComponent(key)).then((t) => {
    const letter = t.result ? ({ success: t.reused_from ? "c" : "s", failed: "f", timed_out: "f", canceled: "k", excluded: "x",
      upstream_failed: "u", upstream_canceled: "u", interrupted: "i" }[t.result] || "i") : (t.state === "running" ? "r" : "q");
    const attempts = t.attempts.map((a, n) => {
      const c = a.cache || {};
      return h("details", { class: "attempt", open: n === t.attempts.length - 1 },
        h("summary", {}, "Attempt " + a.attempt + " · " + (a.result || "running") + " · " +
          fmtDuration(a.finished_at ? a.finished_at - a.started_at : Date.now() - a.started_at)),
        h("dl", { class: "kv" },
          h("dt", {}, "started"), h("dd", {}, fmtTime(a.started_at)),
          h("dt", {}, "finished"), h("dd", {}, fmtTime(a.finished_at)),
          a.error ? [h("dt", {}, "error"), h("dd", { class: "error" }, a.error + (a.error_code ? " (" + a.error_code + ")" : ""))] : null,
          c.key ? [h("dt", {}, "cache key"), h("dd", {}, c.key)] : null,
          c.reused_from ? [h("dt", {}, "reused from"), h("dd", {}, c.reused_from + (c.reused_attempt !== undefined ? " attempt " + c.reused_attempt : ""))] : null,
          c.not_cached ? [h("dt", {}, "not cached"), h("dd", {}, c.not_cached)] : null),
        a.output ? [h("h3", {}, "Output"), h("pre", { class: "json output" }, a.output)] : null,
        h("h3", {}, "Log" + (a.log_truncated ? " (truncated)" : "")),
        h("pre", { class: "log", tabindex: "0", "aria-label": "log of attempt " + a.attempt }, a.log || "(empty)"));
    });
    fill(panel,
      h("h2", { id: "task-title" }, t.key), pill(letter, t.result || t.state),
      t.skipped_reason ? h("p", { class: "muted" }, t.skipped_reason) : null,
      h("dl", { class: "kv" },
        h("dt", {}, "component"), h("dd", {}, t.component || "—"),
        h("dt", {}, "depends on"), h("dd", {}, t.depends_on.join(", ") || "—"),
        t.outcome !== null && t.outcome !== undefined ? [h("dt", {}, "outcome"), h("dd", {}, String(t.outcome))] : null,
        t.child_run ? [h("dt", {}, "child run"), h("dd", {}, h("a", { href: "#/runs/" + t.child_run }, String(t.child_run)))] : null),
      canManage && t.result ? h("div", { class: "bar" }, h("button", { type: "button", class: "repair-task", onclick: () => repairTask(t.key) }, "Repair this task…")) : null,
      t.spec ? h("details", {}, h("summary", {}, "Task spec and params"), h("pre", { class: "json" }, JSON.stringify(t.spec, null, 2))) : null,
      attempts.length ? attempts : h("p", { class: "muted" }, "No attempt yet."));
  }).catch((e) => panel.replaceChildren(h("p", { class: "error" }, e.message)));
}

function repairDialog(view, chosen, done) {
  const run = view.run;
  const failedOnly = h("input", { type: "radio", name: "what", id: "repair-failed", value: "failed", checked: !chosen });
  const some = h("input", { type: "radio", name: "what", id: "repair-chosen", value: "chosen", checked: !!chosen });
  const tasks = h("input", { id: "repair-tasks", value: chosen || "", placeholder: "task keys, comma separated" });
  const deps = h("input", { type: "checkbox", id: "repair-dependents" });
  const overrides = h("textarea", { id: "repair-overrides", rows: 3, placeholder: "name=value, one a line" });
  const err = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", id: "repair-submit", class: "primary" }, "Repair");
  const close = h("button", { type: "button" }, "Close");
  const form = h("form", {},
    h("h2", {}, "Repair run " + run.run_id),
    h("div", {}, failedOnly, h("label", { for: "repair-failed", class: "inline" }, "Every task that did not succeed")),
    h("div", {}, some, h("label", { for: "repair-chosen", class: "inline" }, "Chosen tasks")),
    h("label", { for: "repair-tasks" }, "Tasks"), tasks,
    h("div", {}, deps, h("label", { for: "repair-dependents", class: "inline" }, "and their dependents")),
    h("label", { for: "repair-overrides" }, "Parameter overrides"), overrides,
    h("p", { class: "muted" }, "Current parameters: " + (Object.entries(run.parameters).map(([k, v]) => k + "=" + v).join(", ") || "none")),
    h("div", { class: "bar" }, submit, close), err);
  const dialog = h("dialog", { "aria-label": "Repair run " + run.run_id }, form);
  document.body.append(dialog);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { tasks: [], with_dependents: deps.checked, overrides: {} };
    if (some.checked) body.tasks = tasks.value.split(",").map((s) => s.trim()).filter(Boolean);
    for (const line of overrides.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const eq = line.indexOf("=");
      if (eq < 1) { err.textContent = "`" + line + "`: write name=value"; return; }
      body.overrides[line.slice(0, eq).trim()] = line.slice(eq + 1);
    }
    submit.disabled = true;
    try {
      const r = await sluice.api("/api/sluice/v1/runs/" + run.run_id + "/repair", { body });
      dialog.close();
      sluice.say("repair " + r.repair + " started");
      done();
    } catch (e) {
      err.textContent = e.message;
      submit.disabled = false;
    }
  });
  dialog.showModal();
}

sluice.pages.run = async function (main, runId, params) {
  const view = { run: null, layout: null, selected: params.get("task"), tab: params.get("tab") || "graph" };
  const controller = new AbortController();
  sluice.onLeave(() => controller.abort());
  const head = h("div", {});
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Views of the run" });
  const body = h("div", { id: "run-view" });
  const panel = h("aside", { class: "panel", id: "task-panel", "aria-label": "Task", tabindex: "-1" },
    h("p", { class: "muted" }, "Choose a task to see its attempts, output and log."));
  main.replaceChildren(head, h("div", { class: "layout" }, h("section", {}, tabs, body), panel));
  let drawn = null;

  function select(key) {
    view.selected = key;
    const t = view.run.tasks.find((x) => x.k === key);
    view.panelSig = t ? t.s + JSON.stringify(t.a) : "";
    history.replaceState(null, "", "#/runs/" + runId + "?tab=" + view.tab + "&task=" + encodeURIComponent(key));
    if (drawn && drawn.redraw && view.tab === "graph") drawn.redraw();
    taskPanel(panel, runId, key, view.run.can_manage_run, (k) => repairDialog(view, k, refreshAndFollow));
  }

  function showTab(tab) {
    view.tab = tab;
    tabs.replaceChildren(...["graph", "timeline", "tasks"].map((t) => h("button", {
      type: "button", role: "tab", id: "tab-" + t, "aria-selected": String(t === tab),
      onclick: () => { showTab(t); history.replaceState(null, "", "#/runs/" + runId + "?tab=" + t); },
    }, t[0].toUpperCase() + t.slice(1))));
    if (tab === "tasks") { drawn = drawTaskList(body, view, select); return; }
    const scroller = h("div", { class: "scroller", id: tab === "graph" ? "dag" : "timeline" });
    body.replaceChildren(scroller);
    drawn = tab === "graph" ? drawGraph(scroller, view, select) : drawTimeline(scroller, view, select);
  }

  function header() {
    const run = view.run;
    const letter = runLetter(run);
    const canCancel = run.can_manage_run && !run.result;
    const canRepair = run.can_manage_run && run.result;
    fill(head,
      h("h1", {}, "Run " + run.run_id + " · " + run.job),
      h("div", { class: "bar" },
        h("span", { id: "run-state", class: "pill st-" + letter, "data-result": run.result || "" }, runLabel(run)),
        h("span", { class: "muted" }, "started " + fmtTime(run.created_at) + (run.finished_at ? " · took " + fmtDuration(run.finished_at - run.created_at) : "")),
        h("span", { class: "muted" }, run.tasks.length + " tasks" + (run.repairs ? " · " + run.repairs + " repair(s)" : "")),
        run.job_id ? h("a", { href: "#/jobs/" + run.job_id + "/matrix" }, "Runs matrix") : null,
        canCancel ? h("button", { type: "button", id: "cancel", class: "danger", onclick: cancel }, "Cancel run") : null,
        canRepair ? h("button", { type: "button", id: "repair", class: "primary", onclick: () => repairDialog(view, null, refreshAndFollow) }, "Repair…") : null,
        run.can_manage_run ? null : h("span", { class: "muted", id: "read-only" }, "read only (" + run.level + ")")),
      Object.keys(run.parameters).length ? h("p", { class: "muted" }, "parameters: " +
        Object.entries(run.parameters).map(([k, v]) => k + "=" + v).join(", ")) : null);
  }

  async function cancel() {
    try {
      await sluice.api("/api/sluice/v1/runs/" + runId + "/cancel", { body: {} });
      sluice.say("cancel requested");
    } catch (e) { sluice.say(e.message); }
  }

  async function refresh() {
    const run = await sluice.api("/api/sluice/v1/dashboard/runs/" + runId, { signal: controller.signal });
    const fresh = !view.layout || view.layout.count !== run.tasks.length;
    view.run = run;
    if (fresh) view.layout = layoutRun(run);
    header();
    if (fresh || !drawn) showTab(view.tab);
    else if (view.tab === "tasks") { /* keep the list where the reader is */ } else drawn.redraw();
    // the chosen task's panel again only when that task changed (keeps open attempts and
    // the log's scroll position while other tasks move)
    const chosen = view.selected && run.tasks.find((t) => t.k === view.selected);
    const sig = chosen ? chosen.s + JSON.stringify(chosen.a) : "";
    if (chosen && sig !== view.panelSig) {
      view.panelSig = sig;
      taskPanel(panel, runId, view.selected, run.can_manage_run, (k) => repairDialog(view, k, refreshAndFollow));
    }
  }

  let following = false;
  async function refreshAndFollow() {
    await refresh();
    await follow();
  }

  async function follow() {
    if (following || view.run.result) return;
    following = true;
    let timer = null;
    const later = () => { if (!timer) timer = setTimeout(() => { timer = null; refresh().catch(() => {}); }, REFRESH_EVERY_MS); };
    try {
      await followEvents(runId, controller.signal, later);
    } catch (_) { /* navigated away, or the server went */ }
    following = false;
    if (!controller.signal.aborted) {
      await refresh().catch(() => {});
      // a repair may have begun right after the stream ended
      if (!view.run.result) setTimeout(() => refreshAndFollow().catch(() => {}), 500);
    }
  }

  await refresh();
  if (view.selected && drawn && drawn.reveal) drawn.reveal(view.selected);
  follow().catch(() => {});
};
