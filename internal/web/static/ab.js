// The A/B view: which served model version is better on live traffic. It
// reads /api/ab (the server's prediction log compared per version, package
// ab) and shows each version's share of the answers, its shadow answers,
// mean confidence, agreement with the champion, online accuracy with its
// Wilson 95% interval (drawn on a 0–100% scale) and the two-proportion
// test's verdict against the champion (and McNemar's, on the requests both
// answered).

import { el, svg, getJSON, pct, ms, setStatus } from "./util.js";

const $ = (sel) => document.querySelector(sel);

const state = { champion: "", report: null, seq: 0 };

// showAB shows the view, reloading the comparison (the log keeps growing).
export function showAB() {
  return load();
}

$("#ab-refresh").addEventListener("click", () => load());
$("#ab-champion").addEventListener("change", (e) => {
  state.champion = e.target.value;
  load();
});

async function load() {
  const status = $("#ab-status");
  setStatus(status, "Loading the comparison…");
  const q = state.champion ? `?champion=${encodeURIComponent(state.champion)}` : "";
  const seq = ++state.seq; // a later load wins over a slower earlier one
  let rep;
  try {
    rep = await getJSON(`/api/ab${q}`);
  } catch (e) {
    if (seq !== state.seq) return;
    state.report = null;
    render(null);
    if (e.status === 404) {
      setStatus(status, "This server keeps no prediction log: start petbreed serve with one (--prediction-log) to compare versions.", "bad");
    } else if (e.status === 400 && state.champion) {
      state.champion = "";
      setStatus(status, `${e.message}. Choose another champion.`, "bad");
    } else {
      setStatus(status, `Cannot load the comparison: ${e.message}`, "bad");
    }
    return;
  }
  if (seq !== state.seq) return;
  state.report = rep;
  render(rep);
  const parts = [`${rep.records} prediction${rep.records === 1 ? "" : "s"} logged`,
    `${rep.feedback} request${rep.feedback === 1 ? "" : "s"} with feedback`];
  if (rep.skipped_lines) parts.push(`${rep.skipped_lines} unreadable line${rep.skipped_lines === 1 ? "" : "s"} skipped`);
  if (rep.dropped) parts.push(`${rep.dropped} record${rep.dropped === 1 ? "" : "s"} dropped (the log was busy)`);
  setStatus(status, rep.versions.length ? parts.join(", ") + "." : "No predictions logged yet.");
}

function render(rep) {
  const versions = rep ? rep.versions : [];
  $("#ab-table").hidden = !versions.length;
  $("#ab-verdicts").hidden = !versions.some((v) => !v.champion);
  championPicker(versions, rep ? rep.champion : "");
  const body = $("#ab-table tbody");
  body.replaceChildren(...versions.map(row));
  const verdict = (v, text, cls, kind) => el("li", { class: cls, "data-key": v.key, "data-kind": kind },
    el("strong", {}, v.key), " against ", el("strong", {}, rep.champion), ": ", text || "–");
  const tone = (significant, better) => (significant ? (better ? "verdict good" : "verdict bad") : "verdict");
  $("#ab-verdicts ul").replaceChildren(...versions.filter((v) => !v.champion).flatMap((v) => [
    verdict(v, v.verdict, tone(v.test && v.test.significant, v.test && v.test.diff > 0), "accuracy"),
    // On shadowed requests with feedback: the same images, McNemar's test.
    v.paired ? verdict(v, v.paired.verdict, tone(v.paired.significant, v.paired.challenger_only > v.paired.champion_only), "paired") : null,
  ].filter(Boolean)));
}

function championPicker(versions, champion) {
  const pick = $("#ab-champion");
  const opts = [el("option", { value: "" }, "the most requests")];
  for (const v of versions) opts.push(el("option", { value: v.key }, v.key));
  pick.replaceChildren(...opts);
  pick.value = state.champion && versions.some((v) => v.key === state.champion) ? state.champion : "";
  $("#ab-champion-label").hidden = versions.length < 2;
  pick.title = champion ? `Now: ${champion}` : "";
}

function row(v) {
  return el("tr", { "data-key": v.key, class: v.champion ? "current" : null },
    el("th", { scope: "row" }, v.key, " ",
      v.champion ? el("span", { class: "badge champion" }, "★ champion") : el("span", { class: "badge" }, "challenger")),
    el("td", { class: "num", "data-label": "Requests" }, String(v.requests)),
    el("td", { class: "num", "data-label": "Share" }, pct(v.traffic_share)),
    el("td", { class: "num", "data-label": "Shadow" }, String(v.shadow_requests)),
    el("td", { class: "num", "data-label": "Confidence" }, pct(v.mean_confidence)),
    el("td", { class: "num", "data-label": "Latency" }, ms(v.mean_latency_ms)),
    el("td", { class: "num", "data-label": "Agreement" }, v.agreement
      ? el("span", { title: `${v.agreement.hits} of ${v.agreement.n} requests both answered` }, `${pct(v.agreement.rate)} of ${v.agreement.n}`)
      : "–"),
    el("td", { class: "accuracy", "data-label": "Accuracy" }, v.accuracy ? accuracy(v.accuracy) : "no feedback"));
}

// accuracy is the rate, its interval in words and on a 0–100% scale.
function accuracy(a) {
  const W = 120, H = 14;
  const x = (p) => (p * W).toFixed(1);
  const bar = svg("svg", { class: "interval", width: W, height: H, viewBox: `0 0 ${W} ${H}`, "aria-hidden": "true" },
    svg("rect", { class: "track", x: 0, y: 6, width: W, height: 2 }),
    svg("rect", { class: "ci", x: x(a.low), y: 3, width: x(a.high - a.low), height: 8, rx: 2 }),
    svg("rect", { class: "point", x: (a.rate * W - 1).toFixed(1), y: 0, width: 2, height: H }));
  return el("span", { class: "acc" },
    el("span", { class: "acc-text" }, `${pct(a.rate)} `, el("span", { class: "muted" }, `[${pct(a.low)}, ${pct(a.high)}] of ${a.n}`)),
    bar);
}
