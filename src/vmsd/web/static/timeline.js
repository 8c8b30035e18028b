// A day timeline of one camera: recorded spans and gaps coloured by their reason, from
// GET /api/v1/cameras/{id}/search (the same document as `vmsctl --json search`).
// Pointer: hover shows the time under the cursor; a click picks a moment, a drag a range;
// both call onPick(fromMs, toMs).

import { h, nsToMs, s, formatTime, formatDuration } from "./ui.js";

const WIDTH = 1440; // SVG units across the window (stretched to the page's width)
// A label every `step` for each window size (the window's ends fall on steps).
const STEPS = [
  [86_400_000, 3 * 3_600_000],
  [6 * 3_600_000, 3_600_000],
  [3_600_000, 10 * 60_000],
  [600_000, 2 * 60_000],
];

/** The label step for a window of `spanMs`. */
export function stepFor(spanMs) {
  const found = STEPS.find(([span]) => spanMs >= span);
  return found ? found[1] : spanMs / 5;
}
const HEIGHT = 40;
const BAR_Y = 4;
const BAR_H = 26;
const CLICK_RANGE_MS = 60_000; // a click reviews this much from the clicked moment

export const GAP_REASONS = {
  camera_offline: "camera offline",
  stall: "stream stalled",
  restart: "recorder restarted",
  crash: "recorder crashed",
  clock_step: "clock stepped",
  stream_error: "stream error",
  storage_error: "storage error",
  camera_disabled: "camera disabled",
  not_recorded: "not recorded",
  unknown: "unknown",
};

/** [startMs, endMs] of a span or gap, whether it nests its times in `range` or not. */
export function rangeOf(item) {
  const r = item.range || item;
  return [nsToMs(r.start_ns || "0"), nsToMs(r.end_ns || "0")];
}

export class Timeline {
  constructor({ onPick }) {
    this.onPick = onPick;
    this.startMs = 0;
    this.spanMs = 86_400_000;
    this.svg = s("svg", {
      class: "timeline",
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": "recorded footage over the day",
    });
    this.readout = h("div", { class: "timeline-readout" }, "Click a moment (or drag a range) to review it.");
    this.legend = h(
      "ul",
      { class: "legend" },
      h("li", {}, h("span", { class: "swatch recorded" }), "recorded"),
      Object.entries(GAP_REASONS).map(([reason, words]) =>
        h("li", {}, h("span", { class: `swatch gap gap-${reason}` }), words),
      ),
    );
    // Time labels are HTML (the SVG stretches to the page's width; its text would stretch too).
    this.labels = h("div", { class: "hours", "aria-hidden": "true" });
    this.element = h("div", { class: "timeline-box" }, this.labels, this.svg, this.readout, this.legend);
    this.drag = null;
    // Until the first search answer is drawn there is no window to pick from: pointer events
    // are ignored (a click on the empty bar used to throw, and would have picked 1970).
    this.rendered = false;
    this.selection = s("rect", { y: BAR_Y - 2, height: BAR_H + 4, class: "selection", visibility: "hidden" });
    this.cursor = s("line", { y1: 0, y2: HEIGHT, class: "cursor", visibility: "hidden" });
    this.svg.addEventListener("pointerdown", (e) => this.down(e));
    this.svg.addEventListener("pointermove", (e) => this.move(e));
    this.svg.addEventListener("pointerup", (e) => this.up(e));
    this.svg.addEventListener("pointerleave", () => this.cursor.setAttribute("visibility", "hidden"));
  }

  msAt(event) {
    const box = this.svg.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return this.startMs + fraction * this.spanMs;
  }

  x(ms) {
    return Math.min(WIDTH, Math.max(0, ((ms - this.startMs) / this.spanMs) * WIDTH));
  }

  /** Draw the window [startMs, endMs): `search` is the search answer for it (up to now). */
  render(startMs, endMs, search, nowMs) {
    this.startMs = startMs;
    this.spanMs = endMs - startMs;
    const step = stepFor(this.spanMs);
    const count = Math.max(1, Math.round(this.spanMs / step));
    this.labels.style.gridTemplateColumns = `repeat(${count}, 1fr)`; // CSSOM: allowed under the CSP
    this.labels.replaceChildren(
      ...Array.from({ length: count }, (_, i) => h("span", {}, formatTime(startMs + i * step, { date: false }).replace(/:00$/, ""))),
    );
    const shapes = [s("rect", { x: 0, y: BAR_Y, width: WIDTH, height: BAR_H, class: "day" })];
    const items = [
      ...(search.spans || []).map((span) => ({ kind: "recorded", item: span })),
      ...(search.gaps || []).map((gap) => ({ kind: "gap", item: gap })),
    ];
    for (const { kind, item } of items) {
      const [startMs, endMs] = rangeOf(item);
      const x = this.x(startMs);
      const width = Math.max(0.5, this.x(endMs) - x);
      const reason = kind === "gap" ? item.reason || "unknown" : "";
      const cls = kind === "gap" ? `gap gap-${GAP_REASONS[reason] ? reason : "unknown"}` : "recorded";
      const words =
        kind === "gap"
          ? `gap: ${GAP_REASONS[reason] || reason}${item.detail ? ` — ${item.detail}` : ""}${item.open ? " (ongoing)" : ""}`
          : `recorded${item.segments ? `, ${item.segments} segment(s)` : ""}${item.recorder ? ` on ${item.recorder}` : ""}`;
      const rect = s("rect", { x, y: BAR_Y, width, height: BAR_H, class: cls, "data-kind": kind });
      rect.append(s("title", { text: `${formatTime(startMs)} → ${formatTime(endMs, { date: false })}: ${words}` }));
      shapes.push(rect);
    }
    for (let i = 0; i <= 4 * count; i++) {
      const x = (i / (4 * count)) * WIDTH;
      shapes.push(s("line", { x1: x, x2: x, y1: BAR_Y + BAR_H, y2: BAR_Y + BAR_H + (i % 4 ? 4 : 8), class: "tick" }));
    }
    if (nowMs >= startMs && nowMs < endMs) {
      const x = this.x(nowMs);
      shapes.push(s("line", { x1: x, x2: x, y1: BAR_Y - 2, y2: BAR_Y + BAR_H + 2, class: "now" }));
    }
    this.selection.setAttribute("visibility", "hidden");
    shapes.push(this.selection, this.cursor);
    this.svg.replaceChildren(...shapes);
    this.rendered = true;
    const recordedNs = search.recorded_ns || "0";
    // With a site of recorders: the recorders whose part is missing are named, never left out silently.
    const missing = (search.unavailable || []).map((u) => `${u.recorder} did not answer (${u.reason})`);
    this.summary = `recorded ${formatDuration(recordedNs)}; ${(search.gaps || []).length} gap(s)${missing.length ? `; ${missing.join("; ")}` : ""}`;
    this.readout.textContent = `${this.summary}. Click a moment (or drag a range) to review it.`;
  }

  down(event) {
    if (!this.rendered) return;
    this.svg.setPointerCapture(event.pointerId);
    this.drag = { fromMs: this.msAt(event), startX: event.clientX };
  }

  move(event) {
    if (!this.rendered) return;
    const ms = this.msAt(event);
    const x = this.x(ms);
    this.cursor.setAttribute("x1", x);
    this.cursor.setAttribute("x2", x);
    this.cursor.setAttribute("visibility", "visible");
    if (this.drag) {
      const a = this.x(Math.min(this.drag.fromMs, ms));
      const b = this.x(Math.max(this.drag.fromMs, ms));
      this.selection.setAttribute("x", a);
      this.selection.setAttribute("width", Math.max(0.5, b - a));
      this.selection.setAttribute("visibility", "visible");
      this.readout.textContent = `${formatTime(Math.min(this.drag.fromMs, ms))} → ${formatTime(Math.max(this.drag.fromMs, ms), { date: false })}`;
    } else {
      this.readout.textContent = `${formatTime(ms)} — ${this.summary || ""}`;
    }
  }

  up(event) {
    if (!this.drag) return;
    const ms = this.msAt(event);
    const dragged = Math.abs(event.clientX - this.drag.startX) > 4;
    const fromMs = dragged ? Math.min(this.drag.fromMs, ms) : this.drag.fromMs;
    const toMs = dragged ? Math.max(this.drag.fromMs, ms) : this.drag.fromMs + CLICK_RANGE_MS;
    this.drag = null;
    this.selection.setAttribute("visibility", "hidden");
    this.onPick(Math.round(fromMs), Math.round(toMs));
  }
}
