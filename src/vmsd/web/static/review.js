// Review of recorded footage: a dialog that asks why (the reason is audited), then
// POST /api/v1/cameras/{id}/reviews and a player that plays the returned segments in order,
// each straight from its URL (the browser fetches it with byte ranges), skipping the gaps
// between them and showing the wall time of the picture. With a site of recorders a review may
// hold several recorders' segments (across a failover): the recorder this one asked serves them
// all; each is labelled with its recorder, and the parts the server could not have are named.

import { api } from "./api.js";
import { MaskOverlay } from "./masks.js";
import { errorBox, field, formatTime, h, inputToNs, msToInput, note, nsToMs, say } from "./ui.js";

/**
 * Open the review dialog for [fromMs, toMs]; resolves with the review answer, or null when
 * cancelled. Refusals (no reason, no permission, …) are shown in the dialog in the API's words.
 */
export function askForReview(cameraId, fromMs, toMs) {
  return new Promise((resolve) => {
    const from = h("input", { type: "datetime-local", step: "1", name: "from", value: msToInput(fromMs) });
    const to = h("input", { type: "datetime-local", step: "1", name: "to", value: msToInput(toMs) });
    const reason = h("input", {
      type: "text",
      name: "reason",
      "aria-required": "true",
      placeholder: "e.g. incident 2291, report of a fight",
      autocomplete: "off",
    });
    const messages = h("div", { class: "messages" });
    const submit = h("button", { type: "submit", class: "primary" }, "Review");
    const cancel = h("button", { type: "button", value: "cancel" }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "review-dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, `Review ${cameraId}`),
        h("p", { class: "hint" }, "Reviews are recorded in the audit log with your name and reason."),
        field("From", from),
        field("To", to),
        field("Reason (required)", reason),
        messages,
        h("div", { class: "toolbar" }, submit, cancel),
      ),
    );
    let answer = null;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    dialog.querySelector("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      say(messages, null);
      try {
        // The server decides whether the reason will do (an empty one is refused there, 400).
        answer = await api("POST", `/api/v1/cameras/${encodeURIComponent(cameraId)}/reviews`, {
          from: inputToNs(from),
          to: inputToNs(to),
          reason: reason.value.trim(),
        });
        dialog.close();
      } catch (error) {
        say(messages, errorBox(error, "The review was refused"));
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}

/** A player for a review answer ({review_id, segments: [{url, start_ns, end_ns}]}). */
export class ReviewPlayer {
  constructor({ masks = null } = {}) {
    this.video = h("video", { class: "review-video", controls: true, muted: true, playsInline: true });
    this.video.muted = true;
    this.wall = h("div", { class: "wall-time", "aria-live": "off" }, "");
    this.messages = h("div", { class: "messages" });
    this.list = h("ol", { class: "segments" });
    this.frame = h("div", { class: "frame" }, this.video);
    this.element = h(
      "section",
      { class: "panel review idle" },
      h("h3", {}, "Review"),
      h("p", { class: "hint idle-hint" }, "Click a moment on the timeline (or drag across a range) to review it."),
      this.frame,
      this.wall,
      this.messages,
      this.list,
    );
    this.overlay = masks ? new MaskOverlay(this.frame, this.video) : null;
    if (this.overlay) this.overlay.polygons = masks;
    this.segments = [];
    this.index = -1;
    this.video.addEventListener("ended", () => this.play(this.index + 1, this.joinS(this.index + 1)));
    this.video.addEventListener("timeupdate", () => this.tick());
    this.video.addEventListener("error", () => this.failed());
  }

  /** Play `answer`'s segments from the review's start to its end (the range the server granted). */
  load(answer) {
    this.segments = (answer.segments || []).map((seg) => ({
      url: seg.url,
      startMs: nsToMs(seg.start_ns),
      endMs: nsToMs(seg.end_ns),
      recorder: seg.recorder || "",
      // Where its part starts: a later recorder's overlapping footage joins where the earlier ends.
      fromMs: nsToMs(seg.play_from_ns || seg.start_ns),
    }));
    this.recorders = new Set(this.segments.map((seg) => seg.recorder));
    const fromMs = nsToMs(answer.start_ns);
    this.toMs = nsToMs(answer.end_ns);
    this.reviewId = answer.review_id;
    this.element.classList.remove("idle");
    const notes = (answer.parts || [])
      .filter((part) => part.state !== "played")
      .map((part) => {
        const when = `${formatTime(nsToMs(part.start_ns), { date: false })} → ${formatTime(nsToMs(part.end_ns), { date: false })}`;
        return part.state === "overlap"
          ? note(`${part.recorder} also recorded ${when}: ${part.detail}.`, "note")
          : note(`The footage of ${when} on ${part.recorder} cannot be played now: ${part.detail}`, "error");
      });
    for (const u of answer.unavailable || []) {
      notes.push(note(`Recorder ${u.recorder} did not answer; its footage is not in this review (${u.reason}).`, "error"));
    }
    say(this.messages, notes.length ? h("div", {}, ...notes) : null);
    this.renderList();
    if (!this.segments.length) {
      say(this.messages, note("Nothing was recorded in this range (see the gaps on the timeline).", "note"));
      return;
    }
    this.play(0, Math.max(0, (Math.max(fromMs, this.segments[0].fromMs) - this.segments[0].startMs) / 1000));
  }

  /** Where segment `index` starts playing when reached in order (its part's start), in seconds. */
  joinS(index) {
    const seg = this.segments[index];
    return seg ? Math.max(0, (seg.fromMs - seg.startMs) / 1000) : 0;
  }

  renderList() {
    const items = [];
    this.segments.forEach((seg, i) => {
      const previous = this.segments[i - 1];
      if (previous && seg.startMs - previous.endMs > 500) {
        items.push(
          h("li", { class: "gap-note" }, `gap skipped: ${formatTime(previous.endMs, { date: false })} → ${formatTime(seg.startMs, { date: false })}`),
        );
      }
      items.push(
        h(
          "li",
          { dataset: { index: i } },
          h("button", { type: "button", class: "link", onclick: () => this.play(i, this.joinS(i)) }, `${formatTime(seg.startMs, { date: false })} → ${formatTime(seg.endMs, { date: false })}`),
          this.recorders.size > 1 ? ` on ${seg.recorder}` : "",
          " ",
          h("a", { href: seg.url, download: "", title: "download this segment (fMP4)" }, "download"),
        ),
      );
    });
    this.list.replaceChildren(...items);
  }

  play(index, offsetS) {
    if (index >= this.segments.length) {
      this.wall.textContent = `end of review (${formatTime(this.toMs)})`;
      return;
    }
    this.index = index;
    for (const li of this.list.querySelectorAll("li[data-index]")) {
      li.classList.toggle("current", Number(li.dataset.index) === index);
    }
    const video = this.video;
    video.src = this.segments[index].url;
    video.addEventListener(
      "loadedmetadata",
      () => {
        // A stored segment's media time need not start at 0: measure from where it starts.
        this.base = video.seekable.length ? video.seekable.start(0) : 0;
        if (offsetS > 0) video.currentTime = this.base + offsetS;
        video.play().catch((error) => {
          if (error.name !== "AbortError") say(this.messages, errorBox(error, "Playback"));
        });
      },
      { once: true },
    );
  }

  /** Wall time of the picture shown (segment start + position in the segment). */
  wallMs() {
    const seg = this.segments[this.index];
    if (!seg) return NaN;
    return seg.startMs + (this.video.currentTime - (this.base || 0)) * 1000;
  }

  tick() {
    const ms = this.wallMs();
    if (Number.isNaN(ms)) return;
    this.wall.textContent = formatTime(ms);
    if (ms >= this.toMs && !this.video.paused) {
      this.video.pause();
      this.wall.textContent = `${formatTime(ms)} — end of review`;
    }
  }

  failed() {
    const error = this.video.error;
    if (!error || !this.video.getAttribute("src")) return;
    say(
      this.messages,
      note(
        "This browser cannot play this footage" +
          (error.message ? ` (${error.message})` : "") +
          ". Download the segments below or request an export.",
        "error",
      ),
    );
  }

  dispose() {
    if (this.overlay) this.overlay.dispose();
    this.video.removeAttribute("src");
    this.video.load();
  }
}
