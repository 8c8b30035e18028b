// Small DOM helpers shared by the console's pages. No framework: elements are built with h() and
// styled only through classes in style.css (the server's CSP forbids inline style attributes).

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("button", {class: "primary", onclick: fn}, "Save"). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element (attributes are set verbatim). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** A message box that says what went wrong in words (never a silent failure). */
export function errorBox(error, context) {
  const what = context ? `${context}: ` : "";
  const kind = error && error.kind ? ` (${error.kind})` : "";
  const message = error && error.message ? error.message : String(error);
  return h("div", { class: "error", role: "alert" }, `${what}${message}${kind}`);
}

/** Replace the contents of `slot` with an error, a note or nothing. */
export function say(slot, content) {
  slot.replaceChildren(...(content ? [content] : []));
}

export function note(text, kind = "note") {
  return h("div", { class: kind, role: kind === "error" ? "alert" : "status" }, text);
}

// --- time: the API carries int64 nanoseconds as decimal strings; JS numbers hold ms exactly enough.

export const NS_PER_MS = 1_000_000n;

export function nsToMs(ns) {
  return Number(BigInt(ns) / NS_PER_MS);
}

export function msToNs(ms) {
  return (BigInt(Math.round(ms)) * NS_PER_MS).toString();
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** Local wall time of a ns string or ms number, "2026-12-02 09:41:07". */
export function formatTime(value, { date = true } = {}) {
  if (value === undefined || value === null || value === "" || value === "0") return "—";
  const ms = typeof value === "number" ? value : nsToMs(value);
  const d = new Date(ms);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return date ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}` : clock;
}

/** "1 h 02 min", "4.2 s" from nanoseconds (string or number) */
export function formatDuration(ns) {
  const seconds = Number(BigInt(ns || 0)) / 1e9;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${pad(Math.floor(seconds % 60))} s`;
  return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
}

export function formatBytes(bytes) {
  let value = Number(bytes || 0);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (value < 1024 || unit === "TiB") return `${value.toFixed(unit === "B" ? 0 : 1)} ${unit}`;
    value /= 1024;
  }
  return "";
}

/** Value of an <input type="datetime-local"> as a ns string ("" when empty). */
export function inputToNs(input) {
  if (!input.value) return "";
  return msToNs(new Date(input.value).getTime());
}

/** ms → the "YYYY-MM-DDTHH:MM:SS" an <input type="datetime-local" step="1"> shows. */
export function msToInput(ms) {
  const d = new Date(ms);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A table with a header row; rows are arrays of cells (strings or nodes). */
export function table(headers, rows, { empty = "Nothing to show." } = {}) {
  if (!rows.length) return note(empty);
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
  );
}

/** A labelled form field. */
export function field(label, input, hint) {
  const check = input.type === "checkbox";
  return h("label", { class: check ? "field check" : "field" }, h("span", { class: "label" }, label), input, hint ? h("small", {}, hint) : null);
}

/** Run an async action from a button: disable it meanwhile and show any error in `slot`. */
export async function busy(button, slot, action) {
  button.disabled = true;
  if (slot) say(slot, null);
  try {
    return await action();
  } catch (error) {
    if (slot) say(slot, errorBox(error));
    else throw error;
    return undefined;
  } finally {
    button.disabled = false;
  }
}
