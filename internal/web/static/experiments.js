// The Experiments view: the tracked runs (sortable, champion marked), a
// run's curves (drawn here as SVG from its metric history), its confusion
// matrix as a heat map and its accuracy per breed, and the model registry
// with promotion to champion (admin token).

import { el, svg, getJSON, ApiError, pct, duration, dateTime, shortDate, fmtNumber, setStatus, scrollBehavior } from "./util.js";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "petbreed.adminToken";

const state = {
  experiment: "pet-breed",
  data: null, // /api/runs
  models: null, // /api/models
  sort: { key: "start", dir: -1 },
  runID: "", // the run shown
  run: null, // /api/runs/{id}
  split: "",
  loaded: false,
  onPromoted: null,
};

// showExperiments shows the view, loading it the first time; runID picks
// the run to detail ("" = the one the champion came from).
export async function showExperiments(runID, { onPromoted } = {}) {
  state.onPromoted = onPromoted;
  if (!state.loaded) {
    state.loaded = true;
    await load();
  }
  const id = runID || state.runID || defaultRun();
  if (id && id !== state.runID) await showRun(id, Boolean(runID));
  else markCurrent();
}

async function load() {
  const status = $("#exp-status");
  setStatus(status, "Loading the runs…");
  let runsErr = null;
  try {
    state.data = await getJSON(`/api/runs?experiment=${encodeURIComponent(state.experiment)}`);
  } catch (e) {
    runsErr = e;
    state.data = null;
  }
  await loadModels();
  if (runsErr) {
    $("#runs-scroll").hidden = true;
    $("#run").hidden = true;
    setStatus(status, explainTracking(runsErr, `No experiment named “${state.experiment}” yet: run petbreed pipeline to make one.`), "bad");
    return;
  }
  $("#runs-scroll").hidden = false;
  const n = state.data.runs.length;
  setStatus(status, n ? `${n} run${n === 1 ? "" : "s"} in experiment “${state.data.experiment.name}”.` : "No runs yet.");
  experimentPicker();
  renderRuns();
}

$("#exp-refresh").addEventListener("click", async () => {
  await load();
  const id = state.runID || defaultRun();
  state.runID = "";
  if (id) await showRun(id, false);
});

function explainTracking(e, notFound) {
  if (e instanceof ApiError) {
    if (e.error === "tracking not configured") {
      return "Tracking is not configured on this server: start it with MLFLOW_TRACKING_URI pointing to the MLflow store to see the experiments.";
    }
    if (e.status === 404) return notFound;
    return `The server could not read the runs: ${e.message}`;
  }
  return "The server cannot be reached.";
}

function experimentPicker() {
  const exps = state.data.experiments || [];
  const pick = $("#exp-pick");
  $("#exp-pick-label").hidden = exps.length < 2;
  if (exps.length < 2) return;
  pick.replaceChildren(...exps.map((e) => el("option", { value: e.name, selected: e.id === state.data.experiment.id }, e.name)));
  pick.onchange = async () => {
    state.experiment = pick.value;
    state.runID = "";
    await load();
    const id = defaultRun();
    if (id) await showRun(id, false);
  };
}

function defaultRun() {
  const runs = state.data ? state.data.runs : [];
  const r = runs.find((x) => x.selected) || runs.find((x) => x.champion) || runs[0];
  return r ? r.id : "";
}

// ---------------------------------------------------------------- runs table

// The recipe's params get a column when they differ between the runs; the
// run's panel shows all of them. Metrics: the final ones.
const PARAM_ORDER = ["lr", "batch_size", "epochs", "dropout", "weight_decay", "optimizer", "label_smoothing", "flip_views", "patience"];
const METRIC_ORDER = ["final_val_acc", "final_val_loss", "test_acc"];
const LABELS = {
  lr: ["LR", "learning rate"], batch_size: ["Batch", "batch size"], epochs: ["Epochs", "epochs (at most, with early stopping)"],
  dropout: ["Dropout", "dropout"], weight_decay: ["WD", "weight decay"], optimizer: ["Opt.", "optimizer"],
  label_smoothing: ["LS", "label smoothing"], flip_views: ["Flip", "mirrored images as extra training views"],
  patience: ["Pat.", "early-stopping patience (epochs)"],
  final_val_acc: ["Val acc", "validation accuracy of the weights kept"], final_val_loss: ["Val loss", "validation loss of the weights kept"],
  test_acc: ["Test acc", "test accuracy (the refit run, once)"],
};
const heading = (k) => (LABELS[k] ? LABELS[k] : [k, ""]);

function columns(runs) {
  const differing = PARAM_ORDER.filter((k) => new Set(runs.map((r) => (r.params || {})[k] ?? "")).size > 1);
  const metrics = METRIC_ORDER.filter((k) => runs.some((r) => r.metrics && r.metrics[k] !== undefined));
  const num = (s) => (s === undefined || s === "" || Number.isNaN(Number(s)) ? s : Number(s));
  return [
    { key: "name", label: ["Run", ""], get: (r) => r.name.toLowerCase(), render: runCell },
    { key: "status", label: ["Status", ""], get: (r) => r.status, render: (r) => el("span", { class: `status-${r.status}` }, r.status.toLowerCase()) },
    ...differing.map((k) => ({ key: `p:${k}`, label: heading(k), num: true, get: (r) => num((r.params || {})[k]), render: (r) => (r.params || {})[k] ?? "–" })),
    ...metrics.map((k) => ({
      key: `m:${k}`, label: heading(k), num: true, get: (r) => (r.metrics || {})[k],
      render: (r) => fmtMetric(k, (r.metrics || {})[k]),
    })),
    { key: "duration", label: ["Duration", ""], num: true, get: (r) => r.duration_s, render: (r) => duration(r.duration_s) },
    { key: "start", label: ["Started", ""], get: (r) => r.start, render: (r) => el("span", { title: dateTime(r.start) }, shortDate(r.start)) },
  ];
}

export function fmtMetric(key, v) {
  if (v === undefined) return "–";
  if (v === null) return "NaN";
  return /acc/.test(key) ? pct(v, 2) : fmtNumber(v);
}

function runCell(r) {
  return el("span", {},
    el("a", { href: `#experiments/${encodeURIComponent(r.id)}`, "data-run": r.id }, r.name || r.id.slice(0, 8)),
    r.champion ? el("span", { class: "badge champion", title: "The run of the version the champion alias points to" }, "★ champion") : null,
    r.selected ? el("span", { class: "badge", title: "Chosen by validation; its refit on all the training data is the champion" }, "selected") : null,
    ...(r.versions || []).map((v) => el("span", { class: "badge", title: `Registered as version ${v}` }, `v${v}`)));
}

function renderRuns() {
  const runs = state.data.runs.slice();
  const cols = columns(runs);
  const { key, dir } = state.sort;
  const col = cols.find((c) => c.key === key) || cols[cols.length - 1];
  runs.sort((a, b) => compare(col.get(a), col.get(b), dir));
  const table = $("#runs");
  table.tHead.replaceChildren(el("tr", {}, ...cols.map((c) => {
    const sorted = c.key === col.key;
    return el("th", { scope: "col", class: c.num ? "num" : "", "aria-sort": sorted ? (dir > 0 ? "ascending" : "descending") : null },
      el("button", { type: "button", "data-key": c.key, onclick: () => sortBy(c.key) },
        c.label[1] ? el("abbr", { title: c.label[1] }, c.label[0]) : c.label[0]));
  })));
  table.tBodies[0].replaceChildren(...runs.map((r) => el("tr", { "data-run": r.id },
    ...cols.map((c) => el("td", { class: c.num ? "num" : "" }, c.render(r))))));
  markCurrent();
}

// compare sorts numbers as numbers and strings as text, in the direction
// dir (1 or -1); missing values go last either way.
function compare(a, b, dir) {
  const missing = (x) => x === undefined || x === null || x === "";
  if (missing(a) || missing(b)) return missing(a) - missing(b);
  if (typeof a === "number" && typeof b === "number") return (a - b) * dir;
  return String(a).localeCompare(String(b), undefined, { numeric: true }) * dir;
}

function sortBy(key) {
  const s = state.sort;
  if (s.key === key) s.dir = -s.dir;
  else Object.assign(s, { key, dir: (key.startsWith("m:") && !key.includes("loss")) || key === "start" ? -1 : 1 }); // the best first
  renderRuns();
  $(`#runs th button[data-key="${CSS.escape(key)}"]`).focus();
}

function markCurrent() {
  for (const tr of $("#runs").tBodies[0].rows) {
    const cur = tr.dataset.run === state.runID;
    tr.classList.toggle("current", cur);
    const a = tr.querySelector("a");
    if (a) { if (cur) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current"); }
  }
}

// ---------------------------------------------------------------- one run

async function showRun(id, focus) {
  state.runID = id;
  markCurrent();
  const panel = $("#run");
  panel.hidden = false;
  let run;
  try {
    run = await getJSON(`/api/runs/${encodeURIComponent(id)}`);
  } catch (e) {
    $("#run-h").textContent = "Run";
    setStatus($("#run-meta"), e instanceof ApiError && e.status === 404 ? `There is no run ${id}.` : explainTracking(e, ""), "bad");
    return;
  }
  if (state.runID !== id) return;
  state.run = run;
  $("#run-h").replaceChildren(...[`Run ${run.name || run.id}`,
    run.champion ? el("span", { class: "badge champion" }, "★ champion") : null,
    run.selected ? el("span", { class: "badge" }, "selected") : null].filter(Boolean));
  setStatus($("#run-meta"), [run.status.toLowerCase(), `started ${dateTime(run.start)}`, `took ${duration(run.duration_s)}`, `id ${run.id}`].join(" · "));
  renderParams(run);
  drawCharts();
  const splits = Object.keys(run.evaluation || {});
  state.split = splits.includes("test") ? "test" : splits[0] || "";
  renderEvaluation();
  if (focus) {
    panel.scrollIntoView({ behavior: scrollBehavior(), block: "start" });
    $("#run-h").focus({ preventScroll: true });
  }
}

function renderParams(run) {
  const entries = [
    ...Object.entries(run.metrics || {}).filter(([k]) => !/^(train|val)_(loss|acc)$/.test(k)).map(([k, v]) => [k, fmtMetric(k, v)]),
    ...Object.entries(run.params || {}).map(([k, v]) => [k, v]),
  ];
  $("#run-params").replaceChildren(...entries.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", { title: v }, v))));
  $("#run-details").querySelector("summary").textContent = `All parameters and metrics (${entries.length})`;
  // Open where there is room for them; on a phone they would push the curves away.
  if (!state.detailsSet) {
    state.detailsSet = true;
    $("#run-details").open = matchMedia("(min-width: 800px)").matches;
  }
}

// ---------------------------------------------------------------- curves (SVG)

const charts = [
  { node: "#chart-loss", percent: false, title: "Loss", series: [["train_loss", "train", "s-train"], ["val_loss", "validation", "s-val"]] },
  { node: "#chart-acc", percent: true, title: "Accuracy", series: [["train_acc", "train", "s-train"], ["val_acc", "validation", "s-val"]] },
];

function drawCharts() {
  if (!state.run) return;
  for (const c of charts) {
    const series = c.series
      .map(([key, name, cls]) => ({ name, cls, points: (state.run.history[key] || []).filter((p) => p.value !== null) }))
      .filter((s) => s.points.length);
    lineChart($(c.node), c.title, series, c.percent);
  }
}

// Redraw at the new width when the layout changes (the text stays readable).
let redraw = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(redraw);
  redraw = requestAnimationFrame(drawCharts);
}).observe($("#chart-loss"));

// niceTicks returns about n round tick values covering [lo, hi].
function niceTicks(lo, hi, n) {
  if (hi <= lo) { hi = lo + 1; }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => raw <= s) || 10 * mag;
  const out = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  if (out[out.length - 1] < hi) out.push(Number((out[out.length - 1] + step).toFixed(10)));
  return out;
}

function lineChart(box, title, series, percent) {
  const W = Math.max(240, box.clientWidth || 480);
  const H = box.clientHeight || 260;
  const m = { l: percent ? 48 : 52, r: 14, t: 10, b: 38 };
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const legend = box.parentElement.querySelector(".legend");
  if (!series.length) {
    root.setAttribute("aria-label", `${title}: no values per epoch were logged`);
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "No values per epoch were logged for this run."));
    box.replaceChildren(root);
    legend.replaceChildren();
    return;
  }
  const pts = series.flatMap((s) => s.points);
  let x0 = Math.min(...pts.map((p) => p.step)), x1 = Math.max(...pts.map((p) => p.step));
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  let y0 = Math.min(...pts.map((p) => p.value)), y1 = Math.max(...pts.map((p) => p.value));
  const pad = (y1 - y0) * 0.06 || 0.05;
  y0 -= pad; y1 += pad;
  if (percent) { y0 = Math.max(0, y0); y1 = Math.min(1, y1); }
  else y0 = Math.max(0, y0);
  const yt = niceTicks(y0, y1, 5);
  y0 = yt[0]; y1 = yt[yt.length - 1];
  const xt = niceTicks(x0, x1, Math.min(8, Math.max(1, Math.floor((W - m.l - m.r) / 56)))).filter((v) => Number.isInteger(v) && v >= x0 && v <= x1);
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const fmtY = (v) => (percent ? `${Math.round(v * 1000) / 10}%` : fmtNumber(v));

  const grid = svg("g", { class: "axis", "aria-hidden": "true" });
  for (const v of yt) {
    grid.append(svg("line", { class: "gridline", x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
    grid.append(svg("text", { x: m.l - 6, y: Y(v), "text-anchor": "end", "dominant-baseline": "middle" }, fmtY(v)));
  }
  for (const v of xt) {
    grid.append(svg("line", { x1: X(v), x2: X(v), y1: H - m.b, y2: H - m.b + 5 }));
    grid.append(svg("text", { x: X(v), y: H - m.b + 18, "text-anchor": "middle" }, v));
  }
  grid.append(svg("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }));
  grid.append(svg("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  grid.append(svg("text", { x: (m.l + W - m.r) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  root.append(grid);

  const summary = [];
  for (const s of series) {
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${X(p.step).toFixed(1)},${Y(p.value).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: `series ${s.cls}`, "data-series": s.name }));
    if (s.points.length <= 60) {
      const dots = svg("g", {});
      for (const p of s.points) {
        dots.append(svg("circle", { cx: X(p.step), cy: Y(p.value), r: 3, class: s.cls },
          svg("title", {}, `${s.name}, epoch ${p.step}: ${fmtY(p.value)}`)));
      }
      root.append(dots);
    }
    const first = s.points[0].value, last = s.points[s.points.length - 1].value;
    summary.push(`${s.name} from ${fmtY(first)} to ${fmtY(last)} over ${s.points.length} epochs`);
  }
  root.setAttribute("aria-label", `${title} per epoch: ${summary.join("; ")}.`);
  box.replaceChildren(root);
  legend.replaceChildren(...series.map((s) => el("li", {},
    (() => {
      const sw = svg("svg", { viewBox: "0 0 28 10", "aria-hidden": "true" });
      sw.append(svg("line", { x1: 1, x2: 27, y1: 5, y2: 5, class: `series ${s.cls}` }));
      return sw;
    })(), s.name)));
}

// ---------------------------------------------------------------- evaluation

function renderEvaluation() {
  const evals = state.run.evaluation || {};
  const splits = Object.keys(evals).sort((a, b) => (a === "val" ? -1 : b === "val" ? 1 : a.localeCompare(b)));
  const names = { val: "Validation", test: "Test" };
  $("#split-pick").replaceChildren(...splits.map((s) => el("button", {
    type: "button", "aria-pressed": String(s === state.split),
    onclick: () => { state.split = s; renderEvaluation(); $(`#split-pick button[data-split="${s}"]`).focus(); },
    "data-split": s,
  }, names[s] || s)));
  $("#split-pick").hidden = splits.length < 2;
  const ev = evals[state.split];
  $("#eval").querySelector(".eval-grid").hidden = !ev;
  if (!ev) {
    $("#eval-summary").textContent = "No evaluation was logged for this run.";
    return;
  }
  const total = ev.per_class.reduce((n, c) => n + c.total, 0);
  $("#eval-h").textContent = `Evaluation on the ${(names[state.split] || state.split).toLowerCase()} split`;
  $("#eval-summary").textContent = `Accuracy ${pct(ev.accuracy, 2)} on ${total} images, ${ev.labels.length} breeds.`;
  confusion(ev);
  perClass(ev);
}

// heat colours from light to dark blue; the text is black or white,
// whichever contrasts more with the cell (at least 4.6:1).
const LIGHT = [240, 245, 251], DARK = [8, 48, 107];
function heat(f) {
  const c = LIGHT.map((l, i) => Math.round(l + (DARK[i] - l) * Math.sqrt(f)));
  const lin = c.map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  const lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  const onBlack = (lum + 0.05) / 0.05, onWhite = 1.05 / (lum + 0.05);
  return { bg: `rgb(${c.join(",")})`, fg: onBlack >= onWhite ? "#000" : "#fff" };
}

function confusion(ev) {
  const t = $("#confusion");
  const head = el("tr", {}, el("th", { class: "corner", scope: "col" }, "true ↓ predicted →"),
    ...ev.labels.map((l) => el("th", { scope: "col", title: `predicted ${l}` }, el("span", {}, l))));
  const rows = ev.confusion.map((row, i) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return el("tr", {}, el("th", { scope: "row", title: ev.labels[i] }, ev.labels[i]), ...row.map((n, j) => {
      const f = sum ? n / sum : 0;
      const { bg, fg } = heat(f);
      const td = el("td", {
        class: i === j ? "diag" : "",
        title: `true ${ev.labels[i]}, predicted ${ev.labels[j]}: ${n} of ${sum} (${pct(f)})`,
      }, n);
      td.style.background = bg;
      td.style.color = fg;
      return td;
    }));
  });
  t.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

function perClass(ev) {
  const report = {};
  try { for (const r of (ev.report && ev.report.rows) || []) report[r.label] = r; } catch { /* no report */ }
  const t = $("#per-class");
  t.replaceChildren(
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Breed"), el("th", { scope: "col" }, "Accuracy"), el("th", { scope: "col", class: "num" }, "Correct"),
      el("th", { scope: "col", class: "num" }, "Precision"), el("th", { scope: "col", class: "num" }, "F1"))),
    el("tbody", {}, ...ev.per_class.map((c) => {
      const bar = el("span", {});
      bar.style.width = `${((c.accuracy || 0) * 100).toFixed(1)}%`;
      const r = report[c.label] || {};
      return el("tr", {},
        el("th", { scope: "row" }, c.label),
        el("td", {}, el("span", { class: "bar", "aria-hidden": "true" }, bar), pct(c.accuracy)),
        el("td", { class: "num" }, `${c.correct} / ${c.total}`),
        el("td", { class: "num" }, r.precision === undefined ? "–" : pct(r.precision)),
        el("td", { class: "num" }, r["f1-score"] === undefined ? "–" : pct(r["f1-score"])));
    })));
}

// ---------------------------------------------------------------- registry

async function loadModels() {
  const status = $("#reg-status");
  try {
    state.models = await getJSON("/api/models");
  } catch (e) {
    state.models = null;
    $("#versions").hidden = true;
    $("#admin").hidden = true;
    setStatus(status, explainTracking(e, "No registered model yet: petbreed pipeline registers one."), e instanceof ApiError && e.status === 404 ? "" : "bad");
    return;
  }
  $("#versions").hidden = false;
  renderModels();
}

function renderModels() {
  const m = state.models;
  const champ = m.aliases.champion;
  const admin = m.admin;
  $("#admin").hidden = !admin;
  const token = $("#token");
  token.value = sessionStorage.getItem(TOKEN_KEY) || "";
  if (!$("#reg-status").textContent || !$("#reg-status").classList.contains("good")) {
    setStatus($("#reg-status"), `${m.name}: ${m.versions.length} version${m.versions.length === 1 ? "" : "s"}` +
      (champ ? `, champion v${champ}` : ", no champion") + (admin ? "." : ". Promotion is off: the server has no admin token."));
  }
  $("#versions").tBodies[0].replaceChildren(...m.versions.map((v) => {
    const isChamp = v.aliases.includes("champion");
    const m = v.metrics || {};
    const acc = m.test_acc !== undefined ? `${pct(m.test_acc, 2)} test` : m.final_val_acc !== undefined ? `${pct(m.final_val_acc, 2)} val` : "–";
    return el("tr", { "data-version": v.version },
      el("th", { scope: "row" }, `v${v.version}`),
      el("td", { "data-label": "Aliases" }, ...(v.aliases.length ? v.aliases.map((a) => el("span", { class: a === "champion" ? "badge champion" : "badge" }, a === "champion" ? "★ champion" : a)) : ["–"])),
      el("td", { "data-label": "Run" }, v.run_id ? el("a", { href: `#experiments/${encodeURIComponent(v.run_id)}` }, v.run_name || v.run_id.slice(0, 8)) : "–"),
      el("td", { class: "num", "data-label": "Accuracy" }, acc),
      el("td", { "data-label": "Registered" }, dateTime(v.created)),
      el("td", { class: "action" }, admin && !isChamp
        ? el("button", { type: "button", class: "button small promote", "data-version": v.version, onclick: () => promote(v.version) }, `Make v${v.version} champion`)
        : ""));
  }));
}

$("#token").addEventListener("input", (e) => {
  if (e.target.value) sessionStorage.setItem(TOKEN_KEY, e.target.value);
  else sessionStorage.removeItem(TOKEN_KEY);
});
$("#token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#token").value = "";
  $("#token").focus();
});

async function promote(version) {
  const status = $("#reg-status");
  const token = $("#token").value.trim();
  if (!token) {
    setStatus(status, "Enter the admin token first.", "bad");
    $("#token").focus();
    return;
  }
  setStatus(status, `Promoting v${version}…`);
  let res;
  try {
    res = await fetch(`/api/models/${encodeURIComponent(state.models.name)}/aliases/champion`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ version }),
    });
  } catch {
    setStatus(status, "The server cannot be reached.", "bad");
    return;
  }
  let body = {};
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const why = res.status === 401 ? "the admin token was refused." : res.status === 404 ? `${body.detail || "not found"}.` : `${body.error}: ${body.detail}`;
    setStatus(status, `Could not promote v${version}: ${why}`, "bad");
    return;
  }
  state.models = body;
  setStatus(status, `v${version} is now the champion` + (body.previous ? ` (was v${body.previous}).` : ".") + " The server is loading it…", "good");
  renderModels();
  const focusBack = $("#versions button.promote");
  if (focusBack) focusBack.focus();
  try {
    state.data = await getJSON(`/api/runs?experiment=${encodeURIComponent(state.experiment)}`);
    renderRuns();
  } catch { /* the table keeps its last state */ }
  if (state.onPromoted) {
    const ok = await state.onPromoted(version);
    setStatus(status, ok ? `v${version} is the champion, and the server now serves it.`
      : `v${version} is the champion; the server has not reloaded it yet (see its health).`, ok ? "good" : "bad");
  }
}
