// stellarflow run page: polls the server's JSON every 2 s; no library, no build step.
// Every value from the ledger is inserted as text (never as HTML).
"use strict";
const POLL_MS = 2000;
const FINAL = new Set(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]);
let timer = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function dur(s) {
  if (s === null || s === undefined) return "-";
  s = Math.round(s);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}
function when(iso) { return iso ? iso.replace("T", " ").replace("Z", "") : "-"; }
function badge(state) { return el("span", {class: `state s-${state}`, text: state}); }
function progressBar(p) {
  if (!p) return document.createTextNode("");
  const pct = p.total ? Math.min(100, 100 * p.done / p.total) : 0;
  const bar = el("span", {class: "bar", role: "progressbar", "aria-valuenow": String(p.done),
                          "aria-valuemax": String(p.total)}, el("span", {style: `width:${pct}%`}));
  const eta = p.eta_s === null ? "" : `, ETA ${dur(p.eta_s)}`;
  return el("span", {}, bar, el("span", {class: "bar-text", text: `${p.done}/${p.total} steps${eta}`}));
}

function authHeaders() {
  const tok = sessionStorage.getItem("sf-token");
  return tok ? {"Authorization": `Bearer ${tok}`} : {};
}
// With a token (a server off loopback), files are fetched with it and shown as blob: URLs:
// an <img> or a link cannot send an Authorization header.
async function blobURL(url) {
  const r = await fetch(url, {headers: authHeaders()});
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return URL.createObjectURL(await r.blob());
}
function fileLink(f, kids) {
  const a = el("a", {href: f.url, target: "_blank", rel: "noopener"}, ...kids);
  if (sessionStorage.getItem("sf-token")) {
    a.addEventListener("click", async ev => { ev.preventDefault(); window.open(await blobURL(f.url), "_blank"); });
  }
  return a;
}
function figure(f) {
  const img = el("img", {alt: f.name, loading: "lazy"});
  if (sessionStorage.getItem("sf-token")) blobURL(f.url).then(u => { img.src = u; }); else img.src = f.url;
  return fileLink(f, [img]);
}

async function getJSON(url) {
  const r = await fetch(url, {headers: authHeaders()});
  if (r.status === 401) { document.getElementById("auth").hidden = false; throw new Error("token needed"); }
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).msg || `HTTP ${r.status}`);
  return r.json();
}

function renderGrid(data) {
  const body = document.querySelector("#runs tbody");
  const rows = data.runs.map(run => {
    const tr = el("tr", {"data-run-id": run.run_id, "data-state": run.state});
    tr.append(
      el("td", {text: run.run_id}),
      el("td", {class: "state-cell"}, badge(run.state)),
      el("td", {class: "obs", text: run.observation_id || run.name}),
      el("td", {text: run.source}),
      el("td", {class: "stars", text: `${run.stars_ok ?? "-"} / ${run.stars_failed ?? "-"}`}),
      el("td", {text: when(run.start)}),
      el("td", {text: dur(run.duration_s)}),
      el("td", {text: run.site || "-"}),
      el("td", {}, progressBar(run.progress)));
    tr.addEventListener("click", () => { location.hash = `#/runs/${run.run_id}`; });
    return tr;
  });
  body.replaceChildren(...rows);
  document.getElementById("empty").hidden = rows.length > 0;
  const c = data.counts || {};
  document.getElementById("summary").textContent =
    Object.keys(c).sort().map(k => `${k} ${c[k]}`).join(" · ") || "no runs";
}

function renderGantt(tasks) {
  const box = document.getElementById("gantt");
  const timed = tasks.filter(t => t.start !== null);
  if (!timed.length) { box.replaceChildren(el("p", {text: "No task has started yet."})); return; }
  const now = Date.now() / 1000;
  const t0 = Math.min(...timed.map(t => t.start));
  const t1 = Math.max(...timed.map(t => t.end ?? now), t0 + 1);
  const rowH = 18, left = 210, width = 900, top = 20;
  const s = svg("svg", {width: left + width + 20, height: top + rowH * timed.length + 10,
                        role: "img", "aria-label": "Gantt chart of the run's tasks"});
  const x = t => left + (t - t0) / (t1 - t0) * width;
  for (let i = 0; i <= 4; i++) {
    const tx = left + i * width / 4;
    s.append(svg("line", {x1: tx, x2: tx, y1: top - 4, y2: top + rowH * timed.length, stroke: "#e3e6ea"}));
    const lab = svg("text", {x: tx, y: 12, "font-size": 11, "text-anchor": "middle"});
    lab.textContent = `+${dur((t1 - t0) * i / 4)}`;
    s.append(lab);
  }
  timed.forEach((t, i) => {
    const y = top + i * rowH;
    const name = svg("text", {x: 4, y: y + 13, "font-size": 12});
    name.textContent = `${t.name} #${t.chunk}`;
    const end = t.end ?? now;
    const r = svg("rect", {x: x(t.start), y: y + 2, height: rowH - 4, rx: 3, class: `t-${t.state}`,
                           width: Math.max(2, x(end) - x(t.start))});
    const title = svg("title", {});
    title.textContent = `${t.name} chunk ${t.chunk}: ${t.state}, ${dur(end - t.start)}` +
      (t.exit_code !== null ? `, exit ${t.exit_code}` : "") + (t.stderr_tail ? `\n${t.stderr_tail}` : "");
    r.append(title);
    s.append(name, r);
  });
  box.replaceChildren(s);
}

function renderRun(run) {
  document.getElementById("run-title").replaceChildren(
    document.createTextNode(`Run ${run.run_id}: ${run.observation_id || run.name} `), badge(run.state));
  const facts = document.getElementById("run-facts");
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") facts.append(el("dt", {text: k}), el("dd", {text: String(v)})); };
  facts.replaceChildren();
  add("source", `${run.source} (${run.name})`);
  add("stars", `${run.n_stars ?? "-"} (ok ${run.stars_ok ?? "-"}, failed ${run.stars_failed ?? "-"})`);
  add("received", when(run.received)); add("start", when(run.start)); add("end", when(run.end));
  add("duration", dur(run.duration_s)); add("site", run.site); add("Toil run", run.toil_run);
  add("attempts failed + interrupted", run.attempts === null ? null : `${run.attempts} + ${run.interrupts}`);
  add("outputs", run.outputs); add("failing step", run.failing_step);
  add("reason", run.reason); add("error", run.error);
  document.getElementById("run-progress").replaceChildren(progressBar(run.progress));
  renderGantt(run.tasks);
  const failed = document.getElementById("failed");
  failed.replaceChildren();
  if (run.failed_stars.length) {
    const t = el("table", {id: "failed-stars"}, el("thead", {}, el("tr", {}, el("th", {text: "failed star"}), el("th", {text: "error"}))));
    const tb = el("tbody");
    run.failed_stars.forEach(f => tb.append(el("tr", {}, el("td", {text: f.star_id}), el("td", {class: "error", text: f.error}))));
    t.append(tb);
    failed.append(el("h3", {text: `Failed stars (${run.failed_stars.length})`}), t);
  }
  const files = document.getElementById("files");
  const figs = document.getElementById("figures");
  files.replaceChildren(...run.files.filter(f => f.kind !== "figure").map(f =>
    el("li", {}, fileLink(f, [document.createTextNode(f.name)]), document.createTextNode(` (${f.kind})`))));
  const pngs = run.files.filter(f => f.kind === "figure");
  if (figs.childElementCount !== pngs.length) figs.replaceChildren(...pngs.map(figure));
}

async function tick() {
  clearTimeout(timer);
  const m = location.hash.match(/^#\/runs\/(\d+)$/);
  document.getElementById("grid-view").hidden = !!m;
  document.getElementById("run-view").hidden = !m;
  try {
    if (m) renderRun(await getJSON(`ui/api/runs/${m[1]}`));
    else renderGrid(await getJSON("ui/api/runs?limit=200"));
    document.getElementById("refreshed").textContent = `refreshed ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    document.getElementById("refreshed").textContent = `error: ${e.message}`;
  }
  timer = setTimeout(tick, POLL_MS);
}
document.getElementById("auth-form").addEventListener("submit", ev => {
  ev.preventDefault();
  sessionStorage.setItem("sf-token", document.getElementById("token").value.trim());
  document.getElementById("auth").hidden = true;
  tick();
});
window.addEventListener("hashchange", tick);
tick();
