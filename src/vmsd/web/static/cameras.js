// The cameras in the principal's scope (GET /api/v1/cameras) and the live grid page.

import { api } from "./api.js";
import "./tile.js";
import { errorBox, h, note } from "./ui.js";

/** Recording state in words: "recording", "reconnecting", … */
export function cameraState(camera) {
  const raw = camera.state || (camera.status && camera.status.state) || "";
  return String(raw).replace(/^CAMERA_STATE_/, "").toLowerCase().replace(/_/g, " ");
}

export async function listCameras() {
  const answer = await api("GET", "/api/v1/cameras");
  return (answer && answer.cameras) || [];
}

export function tileFor(camera) {
  const tile = h("vmsd-live-tile", {
    "camera-id": camera.id,
    "camera-name": camera.name || camera.id,
    "camera-state": cameraState(camera),
  });
  tile.masks = camera.privacy_masks;
  return tile;
}

/** The live grid: one tile per camera. */
export async function renderLive(main) {
  main.replaceChildren(h("h1", {}, "Live"), note("Loading cameras…"));
  let cameras;
  try {
    cameras = await listCameras();
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Live"), errorBox(error, "Listing the cameras"));
    return;
  }
  const grid = h("div", { class: `live-grid n${Math.min(cameras.length, 9)}` }, cameras.map(tileFor));
  main.replaceChildren(
    h("h1", {}, "Live"),
    cameras.length ? grid : note("No cameras are in your scope. Ask an administrator to add your cameras to your token."),
  );
}
