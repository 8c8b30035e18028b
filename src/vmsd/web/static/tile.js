// <vmsd-live-tile camera-id="…" camera-name="…" camera-state="…">: one camera's live picture
// with its name, recording state and a live clock. Streams only while on the page and while
// the tab is visible; says in words when this browser cannot decode the camera's codec.

import { LiveStream } from "./live.js";
import { MaskOverlay } from "./masks.js";
import { masked } from "./session.js";
import { errorBox, formatTime, h } from "./ui.js";

const CLOCK_MS = 250;
const STALE_MS = 1500; // no new picture for this long: the tile says so instead of looking live

export class LiveTile extends HTMLElement {
  connectedCallback() {
    const id = this.getAttribute("camera-id");
    const name = this.getAttribute("camera-name") || id;
    this.video = h("video", { class: "live-video", muted: true, autoplay: true, playsInline: true });
    this.video.muted = true; // the property, not only the attribute: autoplay needs it
    this.stateLabel = h("span", { class: "state" }, this.getAttribute("camera-state") || "");
    this.clock = h("span", { class: "clock", title: "time of the picture shown" }, "");
    this.message = h("div", { class: "tile-message", role: "status" });
    this.frame = h("div", { class: "frame" }, this.video, this.message);
    this.replaceChildren(
      h(
        "header",
        {},
        h("a", { class: "name", href: `#/camera/${encodeURIComponent(id)}`, title: "timeline and review" }, name),
        this.stateLabel,
        this.clock,
      ),
      this.frame,
    );
    this.classList.add("tile");
    this.stream = new LiveStream(this.video, id, {
      status: (text, state) => this.show(text, state),
      unsupported: (codec) => this.unsupported(id, codec),
    });
    this.allowed = !masked(); // a masked role sees no picture until its masks are in place
    this.onVisibility = () => {
      if (document.hidden) {
        // Nobody is looking: close the socket (the server stops sending) until the tab is shown.
        this.stream.stop();
        if (this.dataset.live !== "unsupported") this.show("paused while the tab is hidden", "hidden");
      } else if (this.allowed) this.stream.start();
    };
    document.addEventListener("visibilitychange", this.onVisibility);
    this.ticker = setInterval(() => this.tick(), CLOCK_MS);
    if (masked()) {
      // The camera list carries the masks of each camera in scope (a masked role may not read
      // them elsewhere); without them there is no picture, never an unmasked one.
      this.overlay = new MaskOverlay(this.frame, this.video);
      if (Array.isArray(this.masks)) {
        this.overlay.polygons = this.masks;
        this.allowed = true;
      } else {
        this.message.replaceChildren(errorBox("the recorder sent no privacy masks for this camera", "No picture"));
      }
    }
    this.onVisibility();
  }

  disconnectedCallback() {
    document.removeEventListener("visibilitychange", this.onVisibility);
    clearInterval(this.ticker);
    this.stream.stop();
    if (this.overlay) this.overlay.dispose();
    this.overlay = null;
  }

  show(text, state) {
    this.dataset.live = state;
    if (state === "unsupported") return;
    this.message.textContent = state === "playing" ? "" : text;
  }

  unsupported(id, codec) {
    this.dataset.live = "unsupported";
    this.classList.add("unsupported");
    this.message.replaceChildren(
      h(
        "div",
        { class: "fallback", role: "note" },
        h("strong", {}, "This browser cannot play this camera's codec live"),
        h("p", {}, `The camera sends ${codec}, which this browser has no decoder for. Recording is not affected.`),
        h(
          "p",
          {},
          h("a", { href: `#/camera/${encodeURIComponent(id)}` }, "Review recorded footage"),
          " (segments can be downloaded there) or ",
          h("a", { href: `#/evidence?camera=${encodeURIComponent(id)}` }, "export it"),
          ".",
        ),
      ),
    );
  }

  tick() {
    if (this.dataset.live === "unsupported") {
      this.clock.textContent = "";
      return;
    }
    // The server stamps fragments with the frames' wall time (90 kHz from the epoch), so
    // currentTime is the wall time of the picture on screen.
    const pictureMs = this.video.currentTime * 1000;
    const stamped = pictureMs > 1e12;
    const fresh = this.stream.lastMediaAt && performance.now() - this.stream.lastMediaAt < STALE_MS;
    const current = !stamped || Date.now() - pictureMs < STALE_MS;
    const playing = fresh && current && !this.video.paused && this.video.readyState >= 2;
    if (playing) {
      const shownMs = stamped ? pictureMs : Date.now();
      this.clock.textContent = `● live ${formatTime(shownMs, { date: false })}`;
      this.clock.title = stamped
        ? `time of the picture shown, ${((Date.now() - pictureMs) / 1000).toFixed(1)} s ago`
        : `local time; ${this.stream.lagSeconds().toFixed(1)} s behind the newest received picture`;
      if (this.dataset.live !== "playing") this.show("", "playing");
    } else {
      this.clock.textContent = "";
      if (this.dataset.live === "playing" || this.dataset.live === "waiting") {
        const since = stamped ? ` (the last is from ${formatTime(pictureMs, { date: false })})` : "";
        this.show(`no new pictures${since}; waiting…`, "waiting");
      }
    }
    this.classList.toggle("playing", Boolean(playing));
  }
}

customElements.define("vmsd-live-tile", LiveTile);
