// The feedback control of a result card: "Is this right?" Yes (the top-1
// label) or the true breed chosen from the model's classes, sent as
// POST /api/feedback {"request_id", "label"} with the answer's request_id
// (package ab records it in the server's prediction log, and the A/B view
// counts it in each version's online accuracy). The log keeps the last
// feedback of a request, so after a success the control is disabled and
// offers "Change", whose answer replaces the first, rather than a second
// vote. The control is always shown on an answered card: on a server without
// a prediction log (/api/health's "feedback" false, or a 404 when it is
// used) it says so, instead of the page hiding it.

import { el, apiError } from "./util.js";

// Each card's control: its answer's request id, its top-1, what the log holds.
const controls = new WeakMap();

const noLog = "This server does not record feedback (start it with --prediction-log).";

// logged is what /api/health last said of the prediction log ("feedback");
// without a log, an answer's control says so at once (it stays usable: the
// server may have been restarted with one since).
let logged = true;
export function setFeedbackLogged(v) { logged = v; }

// waitFeedback shows a card's control disabled, keeping its place, while
// the card waits for its answer.
export function waitFeedback(node) {
  const fb = node.querySelector(".feedback");
  controls.delete(node);
  fb.hidden = false;
  fb.querySelector("fieldset").disabled = true;
  fb.querySelector(".fb-yes span").textContent = "Yes";
  fb.querySelector(".fb-yes").removeAttribute("title");
  fb.querySelector(".fb-pick").replaceChildren(el("option", { value: "" }, "No, it is…"));
  say(fb, "");
  fb.querySelector(".fb-change").hidden = true;
}

// hideFeedback hides the control of a card without an answer.
export function hideFeedback(node) {
  controls.delete(node);
  node.querySelector(".feedback").hidden = true;
}

// showFeedback enables the control for an answer of /api/predict; classes
// are the breeds the model knows (/api/classes), when known.
export function showFeedback(node, answer, classes) {
  waitFeedback(node);
  const fb = node.querySelector(".feedback");
  const top = answer.top_k && answer.top_k.length ? answer.top_k[0].label : answer.predicted_breed;
  const yes = fb.querySelector(".fb-yes");
  yes.querySelector("span").textContent = `Yes, ${top}`;
  yes.title = `Yes, it is ${top}`;
  // The model's next guesses first, then its other breeds.
  const guesses = (answer.top_k || []).slice(1).map((p) => p.label);
  const rest = (classes || []).filter((c) => c !== top && !guesses.includes(c));
  const pick = fb.querySelector(".fb-pick");
  pick.append(el("optgroup", { label: "Its next guesses" }, ...guesses.map((c) => el("option", { value: c }, c))));
  if (rest.length) pick.append(el("optgroup", { label: "Other breeds" }, ...rest.map((c) => el("option", { value: c }, c))));
  if (!answer.request_id) {
    say(fb, "This answer has no request id, so the server cannot take feedback on it.", "bad");
    return;
  }
  node.dataset.requestId = answer.request_id;
  controls.set(node, { requestID: answer.request_id, top, recorded: "" });
  fb.querySelector("fieldset").disabled = false;
  if (!logged) say(fb, noLog, "bad");
}

// wireFeedback adds the control's handlers to a new card.
export function wireFeedback(node) {
  const fb = node.querySelector(".feedback");
  fb.querySelector(".fb-yes").addEventListener("click", (e) => {
    const c = controls.get(node);
    if (c) send(node, c.top, e.currentTarget);
  });
  fb.querySelector(".fb-send").addEventListener("click", (e) => {
    const c = controls.get(node);
    if (!c) return;
    const pick = fb.querySelector(".fb-pick");
    if (!pick.value) {
      say(fb, "Choose the true breed first.", "bad");
      pick.focus();
      return;
    }
    send(node, pick.value, e.currentTarget);
  });
  fb.querySelector(".fb-change").addEventListener("click", () => {
    const c = controls.get(node);
    if (!c) return;
    fb.querySelector(".fb-change").hidden = true;
    fb.querySelector("fieldset").disabled = false;
    say(fb, `Recorded as ${c.recorded}; a new answer will replace it.`);
    fb.querySelector(".fb-yes").focus();
  });
}

// send posts one feedback; the control is disabled while it is on its way,
// and after a success.
async function send(node, label, from) {
  const c = controls.get(node);
  const fb = node.querySelector(".feedback");
  const form = fb.querySelector("fieldset");
  const focused = fb.contains(document.activeElement);
  form.disabled = true;
  say(fb, "Sending…");
  const failed = (text) => {
    if (controls.get(node) !== c) return;
    say(fb, c.recorded ? `${text} “${c.recorded}” stays recorded.` : text, "bad");
    form.disabled = false;
    if (focused) from.focus();
  };
  let res;
  try {
    res = await fetch("/api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ request_id: c.requestID, label }),
    });
  } catch {
    failed("The server cannot be reached: the feedback was not recorded. Try again.");
    return;
  }
  if (!res.ok) {
    const e = await apiError(res);
    // 404 is also the answer for a request the log does not know ("unknown
    // request"); any other 404 means the server keeps no prediction log.
    failed(e.status === 404 && e.error !== "unknown request"
      ? noLog
      : `The server refused the feedback: ${e.message}.`);
    return;
  }
  let recorded = label;
  try {
    const j = await res.json();
    if (j && typeof j.label === "string") recorded = j.label;
  } catch { /* recorded all the same: the status says so */ }
  if (controls.get(node) !== c) return; // the card was classified again
  c.recorded = recorded;
  say(fb, `Thanks: recorded as ${recorded}.`, "good");
  const change = fb.querySelector(".fb-change");
  change.hidden = false;
  if (focused) change.focus();
}

function say(fb, text, kind = "") {
  const st = fb.querySelector(".fb-status");
  st.querySelector(".fb-text").textContent = text;
  st.classList.toggle("bad", kind === "bad");
  st.classList.toggle("good", kind === "good");
}
