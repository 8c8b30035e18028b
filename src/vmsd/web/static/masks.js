// Privacy masks: polygons in normalised picture coordinates (x right, y down, 0..1), the same
// `privacy_masks` the camera's config and redacted exports use. Drawn here over live and review
// video for roles that must see them — a DISPLAY mask: the recording itself is not masked.

import { api } from "./api.js";
import { busy, errorBox, field, h, note, s, say } from "./ui.js";

export function masksUrl(cameraId) {
  return `/api/v1/cameras/${encodeURIComponent(cameraId)}/privacy-masks`;
}

/** The polygons of a privacy-masks answer ({"camera_id", "masks": [[[x, y], …], …], "editable"}). */
export function polygonsOf(answer) {
  const list = answer && answer.masks;
  return Array.isArray(list) ? list : [];
}

function points(polygon) {
  return polygon.map(([x, y]) => `${x},${y}`).join(" ");
}

/**
 * An SVG over a <video> inside `frame` (a positioned box), covering exactly the picture the video
 * shows (object-fit: contain leaves bars), filled opaque where the polygons are.
 */
export class MaskOverlay {
  constructor(frame, video) {
    this.frame = frame;
    this.video = video;
    this.svg = s("svg", { class: "mask-overlay", viewBox: "0 0 1 1", preserveAspectRatio: "none", "aria-hidden": "true" });
    frame.append(this.svg);
    this.place = () => this.layout();
    this.resize = new ResizeObserver(this.place);
    this.resize.observe(frame);
    video.addEventListener("loadedmetadata", this.place);
    video.addEventListener("resize", this.place);
  }

  set polygons(list) {
    this.svg.replaceChildren(
      ...list.map((polygon) => s("polygon", { points: points(polygon), class: "mask", "fill-rule": "evenodd" })),
    );
    this.frame.classList.toggle("masked", list.length > 0);
    this.layout();
  }

  /** Place the overlay on the displayed picture: the video box minus object-fit's bars. */
  layout() {
    const boxW = this.video.clientWidth;
    const boxH = this.video.clientHeight;
    const picW = this.video.videoWidth || boxW;
    const picH = this.video.videoHeight || boxH;
    if (!boxW || !boxH || !picW || !picH) return;
    const scale = Math.min(boxW / picW, boxH / picH);
    const width = picW * scale;
    const height = picH * scale;
    // CSSOM property writes are allowed under the CSP (style attributes in markup are not).
    this.svg.style.left = `${this.video.offsetLeft + (boxW - width) / 2}px`;
    this.svg.style.top = `${this.video.offsetTop + (boxH - height) / 2}px`;
    this.svg.style.width = `${width}px`;
    this.svg.style.height = `${height}px`;
  }

  dispose() {
    this.resize.disconnect();
    this.video.removeEventListener("loadedmetadata", this.place);
    this.video.removeEventListener("resize", this.place);
    this.svg.remove();
  }
}

/**
 * The mask editor, folded until opened: fetching the still is a (audited) look at the camera,
 * so it happens only when someone means to edit.
 */
export function maskEditor(cameraId) {
  const details = h(
    "details",
    { class: "panel mask-editor" },
    h("summary", {}, h("h3", {}, "Privacy masks")),
  );
  details.addEventListener(
    "toggle",
    () => {
      if (details.open && details.children.length === 1) details.append(...maskEditorParts(cameraId));
    },
  );
  return details;
}

/**
 * The editor itself: the camera's current still, its polygons, click to add points,
 * "Close polygon" to finish one, click a polygon to select it, delete, save with a reason.
 */
function maskEditorParts(cameraId) {
  const messages = h("div", { class: "messages" });
  const image = h("img", {
    class: "still",
    alt: `current picture of camera ${cameraId}`,
    src: `/api/v1/cameras/${encodeURIComponent(cameraId)}/still.jpg?t=${Date.now()}`,
  });
  const svg = s("svg", { class: "mask-editor-layer", viewBox: "0 0 1 1", preserveAspectRatio: "none" });
  const stage = h("div", { class: "mask-stage" }, image, svg);
  let polygons = [];
  let drawing = [];
  let selected = -1;
  // A camera from the configuration file keeps its masks there: the editor still draws them,
  // and gives the exact line for the camera's [[cameras]] entry instead of saving.
  let editable = true;
  const tomlLine = h("pre", { class: "toml", hidden: true });

  image.addEventListener("error", () =>
    say(messages, note(`The recorder could not give a still picture of ${cameraId} (is it recording?).`, "error")),
  );

  function redraw() {
    const shapes = polygons.map((polygon, index) =>
      s("polygon", {
        points: points(polygon),
        class: index === selected ? "mask editable selected" : "mask editable",
        "vector-effect": "non-scaling-stroke",
        onclick: (event) => {
          event.stopPropagation();
          selected = index === selected ? -1 : index;
          redraw();
        },
      }),
    );
    if (drawing.length) {
      shapes.push(s("polyline", { points: points(drawing), class: "mask-draft", "vector-effect": "non-scaling-stroke" }));
      for (const [x, y] of drawing) shapes.push(s("circle", { cx: x, cy: y, r: 0.006, class: "mask-point" }));
    }
    svg.replaceChildren(...shapes);
    if (!editable) {
      tomlLine.hidden = false;
      tomlLine.textContent = `privacy_masks = ${JSON.stringify(polygons)}`;
    }
    remove.disabled = selected < 0;
    close.disabled = drawing.length < 3;
  }

  svg.addEventListener("click", (event) => {
    const box = svg.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
    drawing.push([Number(x.toFixed(4)), Number(y.toFixed(4))]);
    selected = -1;
    redraw();
  });

  const close = h("button", {
    type: "button",
    onclick: () => {
      polygons.push(drawing);
      drawing = [];
      redraw();
    },
  }, "Close polygon");
  const remove = h("button", {
    type: "button",
    onclick: () => {
      polygons.splice(selected, 1);
      selected = -1;
      redraw();
    },
  }, "Delete selected");
  const discard = h("button", {
    type: "button",
    onclick: () => {
      drawing = [];
      redraw();
    },
  }, "Discard points");
  const reason = h("input", { type: "text", required: true, placeholder: "why the masks change (audited)" });
  const save = h("button", { type: "submit", class: "primary" }, "Save masks");
  const form = h(
    "form",
    {
      class: "mask-form",
      onsubmit: (event) => {
        event.preventDefault();
        if (!reason.value.trim()) {
          say(messages, note("Give a reason for changing the masks: it goes into the audit log.", "error"));
          return;
        }
        busy(save, messages, async () => {
          const answer = await api("PUT", masksUrl(cameraId), { masks: polygons, reason: reason.value.trim() });
          polygons = polygonsOf(answer);
          reason.value = "";
          redraw();
          say(messages, note(`Saved ${polygons.length} mask polygon(s) to ${cameraId}'s configuration.`, "ok"));
        });
      },
    },
    h("div", { class: "toolbar" }, close, discard, remove),
    field("Reason", reason),
    save,
  );

  api("GET", masksUrl(cameraId))
    .then((answer) => {
      polygons = polygonsOf(answer).map((polygon) => polygon.map(([x, y]) => [x, y]));
      if (answer && answer.editable === false) {
        // Cameras from the configuration file keep their masks there (privacy_masks).
        editable = false;
        save.disabled = true;
        reason.disabled = true;
        say(
          messages,
          note(
            `${cameraId} is defined in the configuration file, which vmsd never rewrites: draw the masks here, ` +
              "then put the line below into its [[cameras]] entry and restart vmsd.",
          ),
        );
      }
      redraw();
    })
    .catch((error) => say(messages, errorBox(error, "Loading the masks")));
  redraw();

  return [
    h(
      "p",
      { class: "hint" },
      "Click on the picture to place points, then close the polygon. Masks are drawn over the video for masked " +
        "roles only; the recording stays unmasked (use a redacted export to release masked footage).",
    ),
    stage,
    form,
    messages,
    tomlLine,
  ];
}
