// sluice dashboard: deployments and promotions, secret scopes (names, versions, ACLs; never
// values), the secrets audit trail, and search (logs, outputs, errors, parameters).
"use strict";

/// A small form of labelled inputs; `submit(values)` runs on Enter or the button.
function filterForm(id, fields, button, submit) {
  const inputs = {};
  const form = h("form", { class: "filters", id },
    fields.map(([name, label, value]) => {
      inputs[name] = h("input", { id: id + "-" + name, name, value: value || "" });
      return h("label", { for: id + "-" + name }, label, " ", inputs[name]);
    }),
    h("button", { type: "submit", class: "primary" }, button));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const values = {};
    for (const [k, el] of Object.entries(inputs)) values[k] = el.value.trim();
    submit(values);
  });
  return form;
}

function table(headers, rows, label) {
  return h("table", { class: "grid", "aria-label": label },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing to show."))));
}

function setHash(page, values) {
  const q = new URLSearchParams(Object.entries(values).filter(([, v]) => v)).toString();
  location.hash = "#/" + page + (q ? "?" + q : "");
}

sluice.pages.deployments = async function (view, params) {
  const bundle = params.get("bundle") || "", target = params.get("target") || "";
  const out = h("div", {});
  fill(view, h("h1", {}, "Deployments"),
    filterForm("deploy-filter", [["bundle", "Bundle", bundle], ["target", "Target", target]], "Show",
      (v) => setHash("deployments", v)),
    out);
  if (!bundle || !target) return fill(out, h("p", { class: "muted" }, "Name a bundle and a target (as in sluice deploy)."));
  const q = new URLSearchParams({ bundle, target });
  const got = await sluice.api("/api/sluice/v1/deployments?" + q);
  fill(out,
    h("h2", {}, "History of ", bundle, " in ", target),
    table(["#", "current", "bundle hash", "git commit", "by", "when", "origin"], got.deployments.slice().reverse().map((d) =>
      h("tr", { class: d.current ? "current" : "" },
        h("td", {}, String(d.number)), h("td", {}, d.current ? "current" : ""),
        h("td", {}, h("code", {}, d.bundle_hash.slice(0, 12))), h("td", {}, h("code", {}, (d.git_commit || "—").slice(0, 12))),
        h("td", {}, d.principal), h("td", {}, fmtTime(d.at)), h("td", {}, typeof d.origin === "string" ? d.origin : JSON.stringify(d.origin)))),
      "Deployments"),
    h("h2", {}, "Journal (deploys, promotions, rollbacks, approvals)"),
    table(["action", "by", "when", "from", "to"], got.journal.slice().reverse().map((j) =>
      h("tr", {}, h("td", {}, typeof j.action === "string" ? j.action : JSON.stringify(j.action)), h("td", {}, j.principal),
        h("td", {}, fmtTime(j.at)), h("td", {}, j.from ? String(j.from) : "—"), h("td", {}, j.to ? String(j.to) : "—"))),
      "Journal"));
};

sluice.pages.secrets = async function (view, params) {
  const target = params.get("target") || "dev";
  const out = h("div", {});
  fill(view, h("h1", {}, "Secret scopes"),
    filterForm("secrets-filter", [["target", "Target", target]], "Show", (v) => setHash("secrets", v)),
    h("p", { class: "muted" }, "Names, versions and access lists. Values are never shown here."),
    out);
  const scopes = await sluice.api("/api/sluice/v1/secrets/scopes", { body: { target } });
  const sections = [];
  for (const s of scopes) {
    const body = { target, scope: s.scope.id.name };
    let keys = [], acls = [];
    try { keys = await sluice.api("/api/sluice/v1/secrets/list", { body }); } catch (e) { keys = e; }
    try { acls = await sluice.api("/api/sluice/v1/secrets/acls/list", { body }); } catch (e) { acls = e; }
    sections.push(h("section", { class: "card scope" },
      h("h2", {}, s.scope.id.name, " ", h("span", { class: "muted" }, "(your permission: ", String(s.permission), ")")),
      keys instanceof Error ? h("p", { class: "muted" }, keys.message) :
        table(["key", "version", "versions kept", "updated", "by"], keys.map((k) =>
          h("tr", {}, h("td", {}, h("code", {}, k.key)), h("td", {}, String(k.version)), h("td", {}, String(k.versions)),
            h("td", {}, fmtTime(k.updated_at)), h("td", {}, k.updated_by))), "Keys of " + s.scope.id.name),
      acls instanceof Error ? h("p", { class: "muted" }, "ACL: " + acls.message) :
        table(["principal", "permission"], acls.map((a) => h("tr", {}, h("td", {}, a.principal), h("td", {}, String(a.permission)))),
          "ACL of " + s.scope.id.name)));
  }
  fill(out, sections.length ? sections : h("p", { class: "muted" }, "No scope you can see in target " + target + "."));
};

sluice.pages.audit = async function (view, params) {
  const f = { scope: params.get("scope") || "", run: params.get("run") || "", principal: params.get("principal") || "" };
  const out = h("div", {});
  fill(view, h("h1", {}, "Secrets audit"),
    filterForm("audit-filter", [["scope", "Scope", f.scope], ["run", "Run", f.run], ["principal", "Principal", f.principal]],
      "Filter", (v) => setHash("audit", v)),
    out);
  const body = { scope: f.scope || null, run: f.run ? Number(f.run) : null, principal: f.principal || null, denied_only: false };
  const records = await sluice.api("/api/sluice/v1/audit", { body });
  fill(out, table(["when", "action", "principal", "scope", "key", "run", "granted"], records.slice().reverse().map((r) =>
    h("tr", { class: r.granted ? "" : "denied" },
      h("td", {}, fmtTime(r.at)), h("td", {}, String(r.action)), h("td", {}, r.principal),
      h("td", {}, r.target + "/" + r.scope), h("td", {}, r.key || "—"),
      h("td", {}, r.run ? h("a", { href: "#/runs/" + r.run }, String(r.run)) : "—"),
      h("td", {}, r.granted ? "yes" : "denied"))), "Audit records"));
};

sluice.pages.search = async function (view, params) {
  const q = params.get("q") || "", run = params.get("run") || "";
  const out = h("div", { "aria-live": "polite" });
  fill(view, h("h1", {}, "Search"),
    filterForm("search-form", [["q", "Text", q], ["run", "Run (blank: latest runs)", run]], "Search", (v) => setHash("search", v)),
    out);
  if (!q) return fill(out, h("p", { class: "muted" }, "Logs, outputs and errors of tasks, and runs by parameter value."));
  const got = await sluice.api("/api/sluice/v1/dashboard/search?" + new URLSearchParams(run ? { q, run } : { q }));
  fill(out,
    h("p", { id: "search-summary" }, got.hits.length + (got.truncated ? "+" : "") + " hits in " + got.runs_searched + " runs"),
    table(["run", "job", "task", "where", "text"], got.hits.map((x) =>
      h("tr", {},
        h("td", {}, h("a", { href: "#/runs/" + x.run_id + (x.task ? "?task=" + encodeURIComponent(x.task) : "") }, String(x.run_id))),
        h("td", {}, x.job), h("td", {}, x.task ? x.task + " #" + x.attempt : "—"), h("td", {}, x.field),
        h("td", {}, h("code", { class: "hit" }, x.text)))), "Search results"));
};
