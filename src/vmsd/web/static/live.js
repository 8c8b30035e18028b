// Live video: fMP4 over a WebSocket into Media Source Extensions.
//
// The server sends (docs/http.md, "Live video") a text {"type": "config", "codec", "mime", …}
// with the exact MSE codec string, then the init segment (ftyp+moov), then one moof+mdat per
// frame starting at a keyframe; again config + init when the camera's stream changes; text
// {"type": "missed"} when this browser fell behind (whole GOPs skipped) and {"type": "error"}
// just before it closes. Fragments carry the frames' wall time, so currentTime is wall time. One appendBuffer runs at a time (a queue); the
// player stays near the live edge by jumping forward when it falls behind and trims what it
// has already shown so the SourceBuffer never fills.

const BEHIND_LIMIT_S = 1.5; // further behind the newest buffered frame than this: jump forward
const JUMP_TARGET_S = 0.3; // land this far behind the newest frame (some headroom against stalls)
const KEEP_BEHIND_S = 4; // keep this much already-shown video (a frame to go back to, not an archive)
const TRIM_AFTER_S = 10; // trim once this much is behind currentTime
const MAX_QUEUE = 200; // messages waiting for the SourceBuffer; beyond it the stream restarts
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export function liveUrl(cameraId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/cameras/${encodeURIComponent(cameraId)}/live`;
}

export function mimeFor(codec) {
  return `video/mp4; codecs="${codec}"`;
}

/** The codec string of the first text message (JSON {"codec": …} or the bare string). */
export function parseCodecMessage(text) {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object") return { codec: value.codec || value.codecs || "", ...value };
    if (typeof value === "string") return { codec: value };
  } catch {
    // not JSON: the bare codec string
  }
  return { codec: text.trim() };
}

function hex2(n) {
  return n.toString(16).padStart(2, "0");
}

/** Does this message start with an init segment (ftyp)? */
export function isInitSegment(buffer) {
  const b = new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength));
  return b.length === 8 && String.fromCharCode(b[4], b[5], b[6], b[7]) === "ftyp";
}

/**
 * The video codec string from an init segment, for servers that send no text message:
 * avc1.PPCCLL from the avcC box; for H.265 just "hvc1" (enough to learn that it is unsupported).
 */
export function codecFromInit(buffer) {
  const bytes = new Uint8Array(buffer);
  const find = (a, b, c, d) => {
    for (let i = 4; i + 4 <= bytes.length; i++) {
      if (bytes[i] === a && bytes[i + 1] === b && bytes[i + 2] === c && bytes[i + 3] === d) return i;
    }
    return -1;
  };
  const avcC = find(0x61, 0x76, 0x63, 0x43);
  if (avcC >= 0 && avcC + 8 <= bytes.length) {
    return `avc1.${hex2(bytes[avcC + 5])}${hex2(bytes[avcC + 6])}${hex2(bytes[avcC + 7])}`;
  }
  if (find(0x68, 0x76, 0x63, 0x43) >= 0) return "hvc1";
  return "";
}

/**
 * One camera's live stream into one <video>. Callbacks (all optional):
 *   status(text, state)  state: "connecting" | "playing" | "waiting" | "retrying" | "unsupported" | "error"
 *   unsupported(codec)   the browser cannot decode this codec: the stream stops for good
 *   codec(info)          the codec message ({codec, width, height})
 */
export class LiveStream {
  constructor(video, cameraId, callbacks = {}) {
    this.video = video;
    this.cameraId = cameraId;
    this.callbacks = callbacks;
    this.ws = null;
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.queue = [];
    this.mime = "";
    this.attempt = 0;
    this.retryTimer = 0;
    this.running = false;
    this.unsupportedCodec = "";
    this.lastMediaAt = 0;
    this.onVideoError = () => {
      if (this.mediaSource) this.fail(this.describeVideoError());
    };
  }

  start() {
    if (this.running || this.unsupportedCodec) return;
    this.running = true;
    this.video.addEventListener("error", this.onVideoError);
    this.connect();
  }

  /** Close the socket and release the decoder (hidden tab, page left). */
  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.video.removeEventListener("error", this.onVideoError);
    this.teardown();
  }

  status(text, state) {
    if (this.callbacks.status) this.callbacks.status(text, state);
  }

  connect() {
    this.status("connecting…", "connecting");
    const ws = new WebSocket(liveUrl(this.cameraId));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      if (typeof event.data === "string") this.onText(event.data);
      else this.onBinary(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.teardown();
      if (this.running && !this.unsupportedCodec) this.retry(event);
    });
    // An "error" event is always followed by "close", which reports and retries.
  }

  retry(event) {
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    const why = this.closeReason || (event && event.reason) || "the live stream ended";
    this.closeReason = "";
    this.status(`${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`, "retrying");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.running) this.connect();
    }, delay);
  }

  teardown() {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "viewer left");
    if (this.mediaSource) this.resetMedia();
    this.queue = [];
    this.mime = "";
  }

  fail(message) {
    this.status(message, "error");
    const ws = this.ws;
    if (ws) ws.close(1000, "player error"); // its close event schedules the retry
  }

  describeVideoError() {
    const error = this.video.error;
    return `the browser could not decode the live stream${error && error.message ? ` (${error.message})` : ""}`;
  }

  onText(text) {
    const info = parseCodecMessage(text);
    if (info.type === "error") {
      // The server says why before it closes; the close then retries — unless the session
      // ended (logout elsewhere, expiry, a revoked token): then the console asks for a sign-in.
      this.closeReason = `${info.message || "the live stream failed"}${info.kind ? ` (${info.kind})` : ""}`;
      if (info.kind === "UNAUTHENTICATED") {
        window.dispatchEvent(new CustomEvent("vmsd:signed-out", { detail: info.message || "the session ended" }));
      }
      return;
    }
    if (info.type === "missed") {
      this.missedFrames = (this.missedFrames || 0) + Number(info.frames || 0);
      return; // the next fragments start at a later keyframe; afterUpdate jumps to them
    }
    if (this.callbacks.codec) this.callbacks.codec(info);
    if (!info.codec) return;
    if (this.mime && this.mime !== mimeFor(info.codec)) {
      // The camera's stream changed codec or profile: a new decoder for what follows.
      this.resetMedia();
    }
    if (!this.mime) this.open(info.codec);
  }

  /** Drop the MediaSource and queued fragments, keeping the socket. */
  resetMedia() {
    this.queue = [];
    this.sourceBuffer = null;
    this.mediaSource = null;
    this.mime = "";
    this.video.removeAttribute("src");
    this.video.load();
  }

  onBinary(buffer) {
    if (!this.mime) {
      const codec = codecFromInit(buffer);
      // A fragment before any init segment cannot be decoded: wait for the init segment.
      if (!codec && !isInitSegment(buffer)) return;
      if (!this.open(codec)) return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      // The decoder cannot keep up: start again from the server's newest keyframe.
      this.fail("the browser fell too far behind; restarting from the newest picture");
      return;
    }
    this.queue.push(buffer);
    this.pump();
  }

  /** Check the codec and open a MediaSource for it; false (stream stopped) when unsupported. */
  open(codec) {
    const mime = mimeFor(codec);
    if (!codec || !window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this.unsupportedCodec = codec || "unknown";
      this.running = false;
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close(1000, "codec not supported by this browser");
      this.status(`this browser cannot play ${codec || "this codec"} live`, "unsupported");
      if (this.callbacks.unsupported) this.callbacks.unsupported(this.unsupportedCodec);
      return false;
    }
    this.mime = mime;
    const mediaSource = new MediaSource();
    this.mediaSource = mediaSource;
    const url = URL.createObjectURL(mediaSource);
    mediaSource.addEventListener(
      "sourceopen",
      () => {
        URL.revokeObjectURL(url);
        if (this.mediaSource !== mediaSource) return;
        try {
          this.sourceBuffer = mediaSource.addSourceBuffer(mime);
        } catch (error) {
          this.fail(`the browser refused the stream (${error.message})`);
          return;
        }
        this.sourceBuffer.addEventListener("updateend", () => this.afterUpdate());
        this.pump();
      },
      { once: true },
    );
    this.video.src = url;
    return true;
  }

  pump() {
    const sb = this.sourceBuffer;
    if (!sb || sb.updating || !this.queue.length || this.mediaSource.readyState !== "open") return;
    const next = this.queue.shift();
    try {
      sb.appendBuffer(next);
    } catch (error) {
      if (error.name === "QuotaExceededError") {
        this.queue.unshift(next);
        this.trim(true);
      } else {
        this.fail(`the browser refused a live fragment (${error.message})`);
      }
    }
  }

  afterUpdate() {
    if (!this.sourceBuffer) return;
    const video = this.video;
    const ranges = video.buffered;
    if (ranges.length) {
      const start = ranges.start(ranges.length - 1);
      const end = ranges.end(ranges.length - 1);
      if (end > start) {
        this.lastMediaAt = performance.now();
        if (this.attempt) this.attempt = 0;
      }
      // Catch up: the live edge is the newest buffered frame, not wherever playback drifted to.
      if (video.currentTime < start || end - video.currentTime > BEHIND_LIMIT_S) {
        video.currentTime = Math.max(start, end - JUMP_TARGET_S);
      }
      if (video.paused && end > start) {
        video.play().catch((error) => {
          // AbortError: a new source or seek interrupted play(); the next fragment retries.
          if (error.name !== "AbortError") this.status(`the browser would not play (${error.message})`, "error");
        });
      }
    }
    if (!this.trim(false)) this.pump();
  }

  /** Remove already-shown video; true when a removal started (its updateend pumps again). */
  trim(force) {
    const sb = this.sourceBuffer;
    const video = this.video;
    if (!sb || sb.updating || !video.buffered.length) return false;
    const first = video.buffered.start(0);
    const behind = video.currentTime - first;
    if (behind < (force ? 1 : TRIM_AFTER_S)) return false;
    sb.remove(first, video.currentTime - (force ? 0.5 : KEEP_BEHIND_S));
    return true;
  }

  /** Seconds between what is shown and the newest buffered frame (NaN before the first frame). */
  lagSeconds() {
    const ranges = this.video.buffered;
    if (!ranges.length) return NaN;
    return ranges.end(ranges.length - 1) - this.video.currentTime;
  }
}
