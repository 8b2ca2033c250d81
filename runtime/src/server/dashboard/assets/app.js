// sluice dashboard: the shell (token, API calls, routing) and helpers the pages share.
// Every data call goes through the authenticated JSON API with the token typed in.
"use strict";

const TOKEN_KEY = "sluice.token";
const STATE_NAMES = {
  s: "success", c: "reused from cache", f: "failed", k: "canceled", x: "excluded",
  u: "skipped (upstream)", i: "interrupted", r: "running", w: "waiting to retry", q: "queued", "-": "not in run",
};
const RUN_LETTER = {
  success: "s", success_with_failures: "u", failed: "f", timed_out: "f", canceled: "k", skipped: "x",
};

const sluice = {
  pages: {},
  cleanup: [],
  token() { return sessionStorage.getItem(TOKEN_KEY); },

  /// fetch `path` with the token; JSON back, or an Error with the API's message.
  async api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + sluice.token() }, opts.headers || {});
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method: opts.method || (opts.body !== undefined ? "POST" : "GET"),
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: opts.signal,
    });
    const text = await resp.text();
    let data;
    try { data = JSON.parse(text); } catch (_) { data = { message: text }; }
    if (resp.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      sluice.me = null;
      // the login page says why itself; elsewhere, go to it
      if (!sluice.atLogin) location.hash = "#/login";
    }
    if (!resp.ok) {
      const e = new Error(data.message || resp.statusText);
      e.status = resp.status;
      e.code = data.error_code;
      throw e;
    }
    return data;
  },

  say(text) {
    const el = document.getElementById("status");
    el.textContent = text;
    clearTimeout(sluice.sayTimer);
    sluice.sayTimer = setTimeout(() => { el.textContent = ""; }, 4000);
  },

  onLeave(fn) { sluice.cleanup.push(fn); },
};

/// h("div", {class: "x", onclick: f}, child, "text", …): an element.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  return fill(el, ...children, true);
}

/// Put `children` (nested arrays flattened; null, undefined and false left out) into `el`,
/// replacing what it held (appending when the last argument is `true`).
function fill(el, ...children) {
  const append = children[children.length - 1] === true;
  if (append) children.pop(); else el.replaceChildren();
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtTime(ms) { return ms ? new Date(ms).toLocaleString() : "—"; }
function fmtDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
}
function pill(letter, text) { return h("span", { class: "pill st-" + letter }, text || STATE_NAMES[letter] || letter); }
function runLetter(run) { return run.result ? (RUN_LETTER[run.result] || "i") : (run.status === "queued" ? "q" : "r"); }
function runLabel(run) { return run.result || run.status || "running"; }

function legend() {
  return h("div", { class: "legend", "aria-label": "Legend" },
    Object.entries(STATE_NAMES).map(([l, name]) => h("span", {}, h("i", { class: "sq st-" + l }), name)));
}

/// Rows `0..count` of height `rowH` in `scroller`: only those in view (plus a margin)
/// are in the page, so 10,000 rows cost what 30 do. `render(i)` makes row i.
function virtualRows(scroller, count, rowH, render) {
  const spacer = h("div", { class: "spacer" });
  const layer = h("div", { class: "layer" });
  scroller.replaceChildren(spacer, layer);
  spacer.style.height = count * rowH + "px";
  let queued = false;
  let drawn = "";
  function draw() {
    queued = false;
    const first = Math.max(0, Math.floor(scroller.scrollTop / rowH) - 10);
    const last = Math.min(count, Math.ceil((scroller.scrollTop + scroller.clientHeight) / rowH) + 10);
    const key = first + ":" + last;
    if (key === drawn) return;
    drawn = key;
    const rows = [];
    for (let i = first; i < last; i++) {
      const row = render(i);
      row.style.top = i * rowH + "px";
      rows.push(row);
    }
    layer.replaceChildren(...rows);
  }
  scroller.addEventListener("scroll", () => { if (!queued) { queued = true; requestAnimationFrame(draw); } });
  draw();
  return { redraw() { drawn = ""; draw(); }, scrollTo(i) { scroller.scrollTop = i * rowH; drawn = ""; draw(); } };
}

function loginPage(main) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const err = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "card login" },
    h("h1", {}, "Log in"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "muted" }, "Create one with ", h("code", {}, "sluice tokens create --principal NAME"), "."),
    h("button", { id: "login", type: "submit", class: "primary" }, "Log in"),
    err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      await sluice.api("/api/sluice/v1/dashboard/me");
      location.hash = "#/jobs";
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      err.textContent = e.message;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  for (const fn of sluice.cleanup.splice(0)) fn();
  const main = document.getElementById("main");
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  const logout = document.getElementById("logout");
  sluice.atLogin = !sluice.token() || parts[0] === "login";
  if (sluice.atLogin) {
    logout.hidden = true;
    document.getElementById("who").textContent = "";
    return loginPage(main);
  }
  logout.hidden = false;
  if (!sluice.me) {
    try { sluice.me = await sluice.api("/api/sluice/v1/dashboard/me"); } catch (e) { return; }
    document.getElementById("who").textContent = sluice.me.principal + " · " + sluice.me.workspace;
  }
  // each route draws into its own element: one left behind by a newer route (the hash
  // changed while it loaded) draws into a detached element and cannot overwrite the page
  const view = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(view);
  try {
    if (parts[0] === "runs" && parts[1]) await sluice.pages.run(view, Number(parts[1]), params);
    else if (parts[0] === "jobs" && parts[1] && parts[2] === "matrix") await sluice.pages.matrix(view, Number(parts[1]), params);
    else if (["deployments", "secrets", "audit", "search"].includes(parts[0])) await sluice.pages[parts[0]](view, params);
    else await sluice.pages.jobs(view);
  } catch (e) {
    view.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
  }
}

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sluice.me = null;
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
