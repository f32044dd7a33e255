// Small helpers shared by the page's two views.

// el builds an element: el("td", {class: "num", title: "x"}, "text", child...).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG = "http://www.w3.org/2000/svg";

// svg builds an SVG element in the SVG namespace.
export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// ApiError is an answer of the server that is not 2xx, with its JSON
// {"error", "detail"} when there is one.
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail ? `${error}: ${detail}` : error);
    this.status = status;
    this.error = error;
    this.detail = detail || "";
  }
}

// apiError reads the error of a failed response.
export async function apiError(res) {
  let error = `${res.status} ${res.statusText || "error"}`;
  let detail = "";
  try {
    const j = await res.json();
    if (j && j.error) { error = j.error; detail = j.detail || ""; }
  } catch { /* not JSON */ }
  return new ApiError(res.status, error, detail);
}

// getJSON fetches JSON, throwing an ApiError for an error status and a
// TypeError when the server cannot be reached.
export async function getJSON(url, options = {}) {
  const res = await fetch(url, { headers: { Accept: "application/json" }, ...options });
  if (!res.ok) throw await apiError(res);
  return res.json();
}

export function pct(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return `${(x * 100).toFixed(digits)}%`;
}

export function bytes(n) {
  const one = (x) => x.toFixed(1).replace(/\.0$/, "");
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${one(n / 1024)} KB`;
  return `${one(n / 1024 / 1024)} MB`;
}

export function ms(x) {
  return x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x)} ms`;
}

export function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

export function dateTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// shortDate is a date and time without the year when it is this year's.
export function shortDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const opts = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = "numeric";
  return d.toLocaleString(undefined, opts);
}

// fmtNumber shows a metric or param value compactly.
export function fmtNumber(x) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

// scrollBehavior is "smooth" unless the user asked for reduced motion.
export function scrollBehavior() {
  return matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth";
}

// setStatus writes a status line, marked good or bad.
export function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("bad", kind === "bad");
  node.classList.toggle("good", kind === "good");
}
