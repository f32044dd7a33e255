// petbreed's page: the views, the model's status, and the Classify view
// (file picker, drag and drop, paste, camera; what the model sees; resize).
// It talks only to this server: /api/predict, /api/preprocess, /api/resize,
// /api/health and /api/classes (the model server), /api/feedback (each
// result's "Is this right?", feedback.js), /api/runs and /api/models (the
// experiments view, experiments.js), /api/ab (the A/B view, ab.js).

import { el, getJSON, apiError, ApiError, pct, bytes, ms, setStatus, scrollBehavior } from "./util.js";
import { showExperiments } from "./experiments.js";
import { showAB } from "./ab.js";
import { waitFeedback, hideFeedback, showFeedback, wireFeedback, setFeedbackLogged } from "./feedback.js";

const $ = (sel) => document.querySelector(sel);

// The server refuses bodies over this many bytes (413); /api/health may say
// otherwise (max_body), else it is the server's default.
let maxBytes = 10 * 1024 * 1024;
// How many breeds each result shows (the top 5, or fewer classes).
let topK = 5;
// In-flight predictions at once; the others wait their turn.
const parallel = 4;
// The breeds the model knows (/api/classes), for the feedback control.
let knownClasses = [];

// ---------------------------------------------------------------- views

const views = { classify: $("#view-classify"), experiments: $("#view-experiments"), ab: $("#view-ab") };

function route() {
  const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
  const view = name === "experiments" || name === "ab" ? name : "classify";
  for (const [k, node] of Object.entries(views)) node.hidden = k !== view;
  for (const k of Object.keys(views)) {
    const a = $(`#nav-${k}`);
    if (k === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.title = { experiments: "Experiments · petbreed", ab: "A/B · petbreed" }[view] || "petbreed: pet breed classifier";
  if (view === "experiments") showExperiments(arg ? decodeURIComponent(arg) : "", { onPromoted: waitForVersion });
  if (view === "ab") showAB();
}

window.addEventListener("hashchange", route);
for (const k of Object.keys(views)) {
  // Moving to a view puts the keyboard focus at its start.
  $(`#nav-${k}`).addEventListener("click", () => requestAnimationFrame(() => $("#main").focus({ preventScroll: true })));
}

// ---------------------------------------------------------------- server status

const statusNode = $("#model-status");
let healthTimer = 0;

async function health() {
  clearTimeout(healthTimer);
  let h;
  try {
    const res = await fetch("/api/health", { headers: { Accept: "application/json" } });
    h = await res.json();
  } catch {
    statusNode.textContent = "The server cannot be reached";
    statusNode.classList.add("bad");
    healthTimer = setTimeout(health, 3000);
    return null;
  }
  if (h.max_body > 0) maxBytes = h.max_body;
  setFeedbackLogged(h.feedback !== false); // an older server does not say
  statusNode.classList.toggle("bad", !h.ready);
  if (h.ready && h.model) {
    statusNode.textContent = `Model ${h.model.name} v${h.model.version} · ${h.model.classes} breeds · ready`;
  } else {
    statusNode.textContent = h.status === "stopping" ? "The server is stopping" : "The model is loading…";
    healthTimer = setTimeout(health, 1500);
  }
  return h;
}

// waitForVersion polls the health until the server serves version v (after
// a promotion, the server reloads its model); it resolves to whether it did.
async function waitForVersion(v, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const h = await health();
    if (h && h.model && String(h.model.version) === String(v)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

// breedsOf resolves to the breeds of the served model named model
// (/api/classes?model=), once per model; the first list when unknown.
const breedsByModel = new Map();
function breedsOf(model) {
  if (!model) return Promise.resolve(knownClasses);
  if (!breedsByModel.has(model)) {
    breedsByModel.set(model, getJSON(`/api/classes?model=${encodeURIComponent(model)}`).then(
      (c) => c.classes,
      () => { breedsByModel.delete(model); return knownClasses; }));
  }
  return breedsByModel.get(model);
}

async function classes() {
  try {
    const c = await getJSON("/api/classes");
    topK = Math.max(1, Math.min(5, c.count));
    knownClasses = c.classes;
    $("#classes").textContent = c.classes.join(", ");
    $("#classes").classList.remove("muted");
  } catch (e) {
    $("#classes").textContent = e instanceof ApiError && e.status === 503
      ? "The model is loading; its breeds will be listed here." : "The breeds cannot be listed right now.";
    setTimeout(classes, 2000);
  }
}

$("#limits").textContent = `JPEG, PNG, GIF, BMP or WebP, up to ${bytes(maxBytes).replace(".0 ", " ")} each.`;

// ---------------------------------------------------------------- classify

const results = $("#results");
const tpl = $("#result-tpl");
const announce = $("#announce");
let nextID = 1;
let running = 0;
const waiting = [];

// addFiles makes a result card for each file and classifies them.
function addFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  if (location.hash.startsWith("#experiments") || location.hash.startsWith("#ab")) location.hash = "#classify";
  // The newest first, each batch in the order chosen.
  const batch = document.createDocumentFragment();
  for (const file of files) {
    const item = makeCard(file);
    batch.append(item.node);
    const problem = checkFile(file);
    if (problem) {
      showError(item, problem.title, problem.detail, false);
      continue;
    }
    item.node.querySelector(".see").disabled = false;
    enqueue(item);
  }
  results.prepend(batch);
  $("#results-empty").hidden = true;
  $("#clear").disabled = false;
}

// checkFile catches what need not go to the server: not an image by its
// type, empty, or over the server's size limit.
function checkFile(file) {
  if (file.type && !file.type.startsWith("image/")) {
    return { title: `“${file.name}” is not an image (${file.type}).`, detail: "Choose a JPEG, PNG, GIF, BMP or WebP image." };
  }
  if (file.size === 0) return { title: `“${file.name}” is empty.`, detail: "" };
  if (file.size > maxBytes) {
    return { title: `“${file.name}” is too large (${bytes(file.size)}).`, detail: `The server takes images up to ${bytes(maxBytes)}.` };
  }
  return null;
}

function makeCard(file) {
  const node = tpl.content.firstElementChild.cloneNode(true);
  const item = { id: nextID++, file, node, url: URL.createObjectURL(file), result: null };
  node.dataset.id = item.id;
  node.querySelector(".name").textContent = file.name || "pasted image";
  node.querySelector(".name").title = file.name || "";
  node.querySelector(".meta").textContent = `${bytes(file.size)} · waiting…`;
  const img = node.querySelector(".thumb img");
  img.alt = `Preview of ${file.name || "the pasted image"}`;
  img.addEventListener("error", () => { img.hidden = true; img.parentElement.classList.add("none"); }, { once: true });
  img.src = item.url;
  const bars = node.querySelector(".bars");
  bars.style.setProperty("--rows", topK);
  for (let i = 0; i < topK; i++) bars.append(el("li", { class: "placeholder", "aria-hidden": "true" }));
  node.querySelector(".remove").setAttribute("aria-label", `Remove ${file.name || "the pasted image"}`);
  node.querySelector(".remove").addEventListener("click", () => removeItem(item));
  node.querySelector(".see").addEventListener("click", () => inspect(item, true));
  wireFeedback(node);
  node.querySelector(".retry").addEventListener("click", () => {
    node.querySelector(".retry").hidden = true;
    waitFeedback(node);
    node.querySelector(".error").hidden = true;
    node.querySelector(".see").hidden = false;
    node.classList.remove("failed");
    bars.hidden = false;
    enqueue(item);
  });
  items.set(item.id, item);
  return item;
}

const items = new Map();

function enqueue(item) {
  item.node.querySelector(".meta").textContent = `${bytes(item.file.size)} · waiting…`;
  waiting.push(item);
  pump();
}

function pump() {
  while (running < parallel && waiting.length) {
    const item = waiting.shift();
    if (!items.has(item.id)) continue;
    running++;
    classify(item).finally(() => { running--; pump(); });
  }
}

async function classify(item) {
  const meta = item.node.querySelector(".meta");
  meta.textContent = `${bytes(item.file.size)} · classifying…`;
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(`/api/predict?filename=${encodeURIComponent(item.file.name || "pasted")}`, {
      method: "POST",
      body: item.file,
      headers: { "Content-Type": item.file.type || "application/octet-stream", Accept: "application/json" },
    });
  } catch {
    showError(item, "The server cannot be reached.", "Check that petbreed serve is running, then try again.", true);
    return;
  }
  if (!res.ok) {
    const e = await apiError(res);
    const [title, retry] = explain(item.file, e);
    showError(item, title, e.detail || e.error, retry);
    return;
  }
  let r;
  try {
    r = await res.json();
  } catch {
    showError(item, "The server's answer cannot be read.", `${res.status} ${res.headers.get("Content-Type") || ""}`, true);
    return;
  }
  const total = performance.now() - t0;
  item.result = r;
  if (!items.has(item.id)) return;
  meta.textContent = `${bytes(item.file.size)} · ${ms(total)} (server ${ms(r.ms)})`;
  meta.title = `${ms(total)} from sending the image to the answer, ${ms(r.ms)} of it in the server; model ${r.model.name} v${r.model.version}` +
    (r.request_id ? `; request ${r.request_id}` : "");
  const bars = item.node.querySelector(".bars");
  // The model's pet check (issue 13): the breeds stay, flagged.
  item.node.querySelector(".notpet")?.remove();
  const notPet = r.pet && !r.pet.is_pet;
  if (notPet) {
    bars.before(el("p", { class: "notpet" }, "This does not look like a cat or a dog.",
      el("small", {}, `Pet score ${pct(r.pet.score)}, under the model's threshold of ${pct(r.pet.threshold)}. If it were one, its breed would be:`)));
  }
  bars.replaceChildren(...r.top_k.map((p) => {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(100, p.probability * 100)).toFixed(2)}%`;
    return el("li", {},
      el("span", { class: "label", title: p.label }, p.label),
      el("span", { class: "pct" }, pct(p.probability)),
      el("span", { class: "track", "aria-hidden": "true" }, fill));
  }));
  // The breeds of the model that answered (a split may serve several).
  breedsOf(r.model && r.model.name).then((breeds) => {
    if (items.has(item.id) && item.result === r) showFeedback(item.node, r, breeds);
  });
  announce.textContent = `${item.file.name || "Pasted image"}: ${notPet ? "not a cat or a dog; if it were, " : ""}${r.predicted_breed}, ${pct(r.confidence)}.`;
  if (!inspected) inspect(item, false);
}

// explain turns a server error into a sentence, and says whether retrying
// may help.
function explain(file, e) {
  const name = `“${file.name || "the image"}”`;
  switch (e.status) {
    case 413: return [`${name} is too large for the server.`, false];
    case 415: return [`${name} is not an image the server can read (JPEG, PNG, GIF, BMP or WebP).`, false];
    case 422: return [`${name} cannot be decoded.`, false];
    case 503: return ["The server is busy or its model is loading.", true];
    case 400: return [`The server refused ${name}.`, false];
    default: return [`The server failed on ${name} (${e.status}).`, true];
  }
}

function showError(item, title, detail, retry) {
  const node = item.node;
  node.classList.add("failed");
  node.querySelector(".bars").hidden = true;
  node.querySelector(".notpet")?.remove();
  hideFeedback(item.node);
  const p = node.querySelector(".error");
  p.replaceChildren(title, detail ? el("small", {}, detail) : "");
  p.hidden = false;
  node.querySelector(".meta").textContent = `${bytes(item.file.size)} · not classified`;
  node.querySelector(".retry").hidden = !retry;
  node.querySelector(".see").hidden = true;
}

function removeItem(item) {
  items.delete(item.id);
  URL.revokeObjectURL(item.url);
  const next = item.node.nextElementSibling || item.node.previousElementSibling;
  item.node.remove();
  if (inspected === item) clearInspect();
  if (!items.size) {
    $("#results-empty").hidden = false;
    $("#clear").disabled = true;
    $("#file").focus();
  } else if (next) {
    next.querySelector(".remove").focus();
  }
}

$("#clear").addEventListener("click", () => {
  for (const item of [...items.values()]) removeItem(item);
});

for (const id of ["#file", "#camera"]) {
  $(id).addEventListener("change", (e) => {
    addFiles(e.target.files);
    e.target.value = ""; // the same file can be chosen again
  });
}

// Drag and drop anywhere on the page.
const drop = $("#drop");
let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
document.addEventListener("dragenter", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth++;
  drop.classList.add("over");
});
document.addEventListener("dragover", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) { dragDepth = 0; drop.classList.remove("over"); }
});
document.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return; // text dropped into a field stays the field's
  e.preventDefault();
  dragDepth = 0;
  drop.classList.remove("over");
  addFiles(e.dataTransfer.files);
});

// Paste: an image copied from another page or a screenshot tool.
document.addEventListener("paste", (e) => {
  const dt = e.clipboardData;
  if (!dt) return;
  let files = Array.from(dt.files || []);
  if (!files.length) {
    files = Array.from(dt.items || []).filter((i) => i.kind === "file").map((i) => i.getAsFile()).filter(Boolean);
  }
  if (!files.length) return; // text: leave it to the field being edited
  e.preventDefault();
  addFiles(files);
});

// ---------------------------------------------------------------- what the model sees

let inspected = null;
let seenURL = "";
let resizedURL = "";
let trueSize = null; // the original's true size, from the server

async function inspect(item, scroll) {
  inspected = item;
  $("#inspect-empty").hidden = true;
  $("#inspect-body").hidden = false;
  $("#inspect-original").src = item.url;
  $("#inspect-original").alt = `The original: ${item.file.name || "pasted image"}`;
  $("#inspect-original-cap").textContent = `Original: ${item.file.name || "pasted image"}`;
  setStatus($("#resize-info"), "");
  $("#resize-out").hidden = true;
  if (scroll) {
    $("#inspect").scrollIntoView({ behavior: scrollBehavior(), block: "start" });
    $("#inspect-h").setAttribute("tabindex", "-1");
    $("#inspect-h").focus({ preventScroll: true });
  }
  await preprocess();
}

async function preprocess() {
  const item = inspected;
  if (!item) return;
  const cap = $("#seen-cap");
  cap.textContent = "Preprocessing…";
  const gray = $("#seen-gray").checked;
  let res;
  try {
    res = await fetch(`/api/preprocess?grayscale=${gray}`, { method: "POST", body: item.file });
  } catch {
    cap.textContent = "The server cannot be reached.";
    return;
  }
  if (item !== inspected) return;
  if (!res.ok) {
    const e = await apiError(res);
    cap.textContent = `The server could not preprocess the image: ${e.message}`;
    return;
  }
  const h = res.headers;
  trueSize = { w: +h.get("X-Original-Width"), h: +h.get("X-Original-Height") };
  const blob = await res.blob();
  if (seenURL) URL.revokeObjectURL(seenURL);
  seenURL = URL.createObjectURL(blob);
  $("#seen").src = seenURL;
  $("#inspect-original-cap").textContent =
    `Original: ${item.file.name || "pasted image"}, ${trueSize.w} × ${trueSize.h} px`;
  cap.textContent = `The model’s input: ${h.get("X-Final-Width")} × ${h.get("X-Final-Height")} px, ${h.get("X-Mode")}` +
    " (resized, centre-cropped)";
  keepAspect("w");
}

function clearInspect() {
  inspected = null;
  trueSize = null;
  $("#inspect-empty").hidden = false;
  $("#inspect-body").hidden = true;
  $("#inspect-original").removeAttribute("src");
  $("#seen").removeAttribute("src");
  if (seenURL) URL.revokeObjectURL(seenURL);
  if (resizedURL) URL.revokeObjectURL(resizedURL);
  seenURL = resizedURL = "";
}

$("#seen-gray").addEventListener("change", preprocess);

// keepAspect sets the other side from the one just edited, when asked.
function keepAspect(from) {
  if (!$("#resize-keep").checked || !trueSize || !trueSize.w || !trueSize.h) return;
  const w = $("#resize-w"), h = $("#resize-h");
  if (from === "w" && w.valueAsNumber > 0) h.value = Math.max(1, Math.round(w.valueAsNumber * trueSize.h / trueSize.w));
  if (from === "h" && h.valueAsNumber > 0) w.value = Math.max(1, Math.round(h.valueAsNumber * trueSize.w / trueSize.h));
}
$("#resize-w").addEventListener("input", () => keepAspect("w"));
$("#resize-h").addEventListener("input", () => keepAspect("h"));
$("#resize-keep").addEventListener("change", () => keepAspect("w"));

$("#resize-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const item = inspected;
  if (!item) return;
  const info = $("#resize-info");
  const q = new URLSearchParams({
    width: $("#resize-w").value, height: $("#resize-h").value, filter: $("#resize-filter").value,
  });
  if ($("#resize-format").value) q.set("format", $("#resize-format").value);
  setStatus(info, "Resizing…");
  $("#resize-go").disabled = true;
  try {
    const res = await fetch(`/api/resize?${q}`, { method: "POST", body: item.file });
    if (!res.ok) throw await apiError(res);
    const h = res.headers;
    const blob = await res.blob();
    if (resizedURL) URL.revokeObjectURL(resizedURL);
    resizedURL = URL.createObjectURL(blob);
    const type = (res.headers.get("Content-Type") || "").replace("image/", "");
    const nw = h.get("X-New-Width"), nh = h.get("X-New-Height");
    $("#resized").src = resizedURL;
    $("#resized").alt = `The image resized to ${nw} by ${nh} pixels`;
    const base = (item.file.name || "image").replace(/\.[^.]*$/, "");
    $("#resize-download").href = resizedURL;
    $("#resize-download").download = `${base}-${nw}x${nh}.${type === "jpeg" ? "jpg" : type}`;
    $("#resize-download").textContent = `Download (${bytes(blob.size)})`;
    $("#resize-out").hidden = false;
    setStatus(info, `Original ${h.get("X-Original-Width")} × ${h.get("X-Original-Height")} ` +
      `(${h.get("X-Original-Format")}) → ${nw} × ${nh}, ${type.toUpperCase()}, ${bytes(blob.size)}`, "good");
  } catch (err) {
    setStatus(info, err instanceof ApiError ? `The server refused: ${err.message}` : "The server cannot be reached.", "bad");
  } finally {
    $("#resize-go").disabled = false;
  }
});

// ---------------------------------------------------------------- start

route();
health().then(classes);
