// The jobs page: each served job of the caller's workspace, its trigger, its last runs
// as coloured squares (newest right), "Run now" with parameters.
"use strict";

/// How many recent runs each job shows as squares.
const JOB_SQUARES = 15;

function triggerText(t) {
  if (!t) return h("span", { class: "muted" }, "manual");
  const bits = [t.kind + (t.paused ? " (paused)" : "")];
  if (t.next) bits.push("next " + fmtTime(t.next));
  if (t.last && t.last[1] && t.last[1].at) bits.push("last " + fmtTime(t.last[1].at));
  if (t.error) bits.push("error: " + t.error);
  return bits.join(" · ");
}

async function runNowDialog(job) {
  const full = await sluice.api("/api/2.2/jobs/get?job_id=" + job.job_id);
  const params = full.settings.parameters || [];
  const inputs = params.map((p) => {
    const id = "param-" + p.name;
    return [h("label", { for: id }, p.name), h("input", { id, name: id, value: p.default ?? "" })];
  });
  const err = h("p", { class: "error", role: "alert" });
  const submit = h("button", { id: "run-now-submit", type: "submit", class: "primary" }, "Run");
  const cancel = h("button", { type: "button" }, "Close");
  const form = h("form", { id: "run-now-form", method: "dialog" },
    h("h2", {}, "Run " + job.settings.name),
    params.length ? inputs : h("p", { class: "muted" }, "This job has no parameters."),
    h("div", { class: "bar" }, submit, cancel), err);
  const dialog = h("dialog", { "aria-label": "Run " + job.settings.name }, form);
  document.body.append(dialog);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const job_parameters = {};
    for (const p of params) job_parameters[p.name] = form.elements["param-" + p.name].value;
    submit.disabled = true;
    try {
      const r = await sluice.api("/api/2.2/jobs/run-now", { body: { job_id: job.job_id, job_parameters } });
      dialog.close();
      location.hash = "#/runs/" + r.run_id;
    } catch (e) {
      err.textContent = e.message;
      submit.disabled = false;
    }
  });
  dialog.showModal();
}

async function renderJobs(main) {
  const [list, triggers, levels] = await Promise.all([
    sluice.api("/api/2.2/jobs/list?limit=100"),
    sluice.api("/api/sluice/v1/triggers", { body: { action: "list" } }).catch(() => ({ triggers: [] })),
    sluice.api("/api/sluice/v1/dashboard/jobs"),
  ]);
  const jobs = list.jobs || [];
  const byJob = new Map((triggers.triggers || []).map((t) => [t.job_id, t]));
  const levelOf = new Map((levels.jobs || []).map((l) => [l.job_id, l]));
  const runs = await Promise.all(jobs.map((j) =>
    sluice.api("/api/sluice/v1/runs?limit=" + JOB_SQUARES + "&job_id=" + j.job_id).catch(() => [])));
  const rows = jobs.map((job, i) => {
    const squares = runs[i].slice().reverse().map((r) => h("a", {
      class: "sq st-" + runLetter(r), href: "#/runs/" + r.run_id,
      title: "run " + r.run_id + ": " + runLabel(r) + " · " + fmtTime(r.created_at),
      "aria-label": "run " + r.run_id + " " + runLabel(r),
    }));
    return h("tr", { "data-job": job.settings.name },
      h("td", {}, h("a", { href: "#/jobs/" + job.job_id + "/matrix" }, job.settings.name),
        h("div", { class: "muted" }, "bundle " + ((job.settings.tags || {}).bundle || "—") + " · id " + job.job_id)),
      h("td", {}, triggerText(byJob.get(job.job_id))),
      h("td", {}, h("div", { class: "squares" }, squares.length ? squares : h("span", { class: "muted" }, "no runs"))),
      h("td", {}, (levelOf.get(job.job_id) || {}).can_manage_run
        ? h("button", { type: "button", class: "run-now", onclick: () => runNowDialog(job).catch((e) => sluice.say(e.message)) }, "Run now")
        : h("span", { class: "muted read-only" }, "read only (" + ((levelOf.get(job.job_id) || {}).level || "CAN_VIEW") + ")")));
  });
  main.replaceChildren(
    h("h1", {}, "Jobs"),
    jobs.length ? h("table", { class: "grid", id: "jobs" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Trigger"),
        h("th", { scope: "col" }, "Last runs"), h("th", { scope: "col" }, h("span", { class: "muted" }, "Actions")))),
      h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No jobs are served to this workspace (sluice serve BUNDLE --workspace W)."),
    h("h2", {}, "Legend"), legend());
}

sluice.pages.jobs = async function (main) {
  await renderJobs(main);
  // refresh the squares while nobody is typing parameters or has focus in the table
  const timer = setInterval(() => {
    const busy = document.querySelector("dialog") || main.contains(document.activeElement);
    if (!busy) renderJobs(main).catch(() => {});
  }, 5000);
  sluice.onLeave(() => clearInterval(timer));
};
