// The camera page (#/camera/ID): live picture, the day timeline, review and (for admins) the
// privacy-mask editor.

import { api, query } from "./api.js";
import { cameraState, listCameras, tileFor } from "./cameras.js";
import { maskEditor } from "./masks.js";
import { askForReview, ReviewPlayer } from "./review.js";
import { can, masked } from "./session.js";
import { Timeline, stepFor } from "./timeline.js";
import { errorBox, h, msToNs, note, say } from "./ui.js";

const REFRESH_MS = 10_000;

function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function dayInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export async function renderCamera(main, cameraId) {
  main.replaceChildren(h("h1", {}, cameraId), note("Loading…"));
  let camera;
  try {
    camera = (await listCameras()).find((c) => c.id === cameraId);
  } catch (error) {
    main.replaceChildren(h("h1", {}, cameraId), errorBox(error, "Listing the cameras"));
    return () => {};
  }
  if (!camera) {
    main.replaceChildren(h("h1", {}, cameraId), note(`There is no camera ${cameraId} in your scope.`, "error"));
    return () => {};
  }
  // Masked roles see the camera's privacy masks over review video too (from the camera list).
  const masks = masked() ? camera.privacy_masks || [] : null;

  const messages = h("div", { class: "messages" });
  const day = h("input", { type: "date", value: dayInput(Date.now()), "aria-label": "day" });
  const zoom = h(
    "select",
    { "aria-label": "how much of the day" },
    [
      [86_400_000, "whole day"],
      [6 * 3_600_000, "last 6 h"],
      [3_600_000, "last hour"],
      [600_000, "last 10 min"],
    ].map(([ms, words]) => h("option", { value: String(ms), selected: ms === 3_600_000 }, words)),
  );
  zoom.addEventListener("change", () => refresh());
  const player = new ReviewPlayer({ masks });
  let dayStartMs = startOfDay(Date.now());

  const timeline = new Timeline({
    onPick: async (fromMs, toMs) => {
      if (!can("recordings.play")) {
        say(messages, note("Your role may search recordings but not review them.", "error"));
        return;
      }
      const answer = await askForReview(cameraId, fromMs, toMs);
      if (answer) player.load(answer);
    },
  });

  /** The window shown: the whole day, or the last `zoom` of it (up to now on the current day). */
  function windowMs(nowMs) {
    const dayEndMs = dayStartMs + 86_400_000;
    const span = Number(zoom.value);
    if (span >= 86_400_000) return [dayStartMs, dayEndMs];
    // Up to now and a little beyond, ending on a label step (so the labels are round times).
    const step = stepFor(span);
    const endMs = nowMs < dayEndMs ? Math.min(dayEndMs, Math.ceil((nowMs + span / 20) / step) * step) : dayEndMs;
    return [Math.max(dayStartMs, endMs - span), endMs];
  }

  async function refresh() {
    const nowMs = Date.now();
    const [startMs, endMs] = windowMs(nowMs);
    const searchEndMs = Math.min(endMs, nowMs);
    if (searchEndMs <= startMs) {
      timeline.render(startMs, endMs, { spans: [], gaps: [] }, nowMs);
      return;
    }
    try {
      const search = await api(
        "GET",
        `/api/v1/cameras/${encodeURIComponent(cameraId)}/search${query({ from: msToNs(startMs), to: msToNs(searchEndMs) })}`,
      );
      timeline.render(startMs, endMs, search || {}, nowMs);
      say(messages, null);
    } catch (error) {
      say(messages, errorBox(error, "Searching the recordings"));
    }
  }

  day.addEventListener("change", () => {
    if (!day.value) return;
    const [y, m, d] = day.value.split("-").map(Number);
    dayStartMs = new Date(y, m - 1, d).getTime();
    refresh();
  });

  const sections = [
    h(
      "header",
      { class: "page-head" },
      h("h1", {}, camera.name || camera.id),
      h("span", { class: "state" }, cameraState(camera)),
      camera.location ? h("span", { class: "hint" }, camera.location) : null,
    ),
  ];
  if (can("live.relay")) sections.push(h("div", { class: "live-single" }, tileFor(camera)));
  if (can("recordings.search")) {
    sections.push(
      h(
        "section",
        { class: "panel" },
        h("div", { class: "panel-head" }, h("h2", {}, "Recordings"), h("div", { class: "toolbar" }, zoom, day)),
        timeline.element,
        messages,
      ),
    );
    sections.push(player.element);
  }
  if (can("cameras.manage") && can("live.relay")) sections.push(maskEditor(cameraId));
  main.replaceChildren(...sections);

  await refresh();
  const timer = setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
  return () => {
    clearInterval(timer);
    player.dispose();
  };
}
