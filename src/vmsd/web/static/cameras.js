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

// A view holds at most this many tiles (a 4×4 wall, as VMS views go); more cameras are paged.
// It also keeps one browser's live streams under the recorder's per-principal relay limit
// ([live] max_relays_per_principal): a tile beyond it would only show that limit's error.
export const TILES_PER_PAGE = 16;

/** The live grid: one tile per camera, TILES_PER_PAGE at a time (`#/?page=N`, from 1). */
export async function renderLive(main, params = new URLSearchParams()) {
  main.replaceChildren(h("h1", {}, "Live"), note("Loading cameras…"));
  let cameras;
  try {
    cameras = await listCameras();
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Live"), errorBox(error, "Listing the cameras"));
    return;
  }
  if (!cameras.length) {
    main.replaceChildren(h("h1", {}, "Live"), note("No cameras are in your scope. Ask an administrator to add your cameras to your token."));
    return;
  }
  const pages = Math.ceil(cameras.length / TILES_PER_PAGE);
  const asked = Number.parseInt(params.get("page") || "1", 10);
  const page = Number.isFinite(asked) ? Math.min(Math.max(asked, 1), pages) : 1;
  const shown = cameras.slice((page - 1) * TILES_PER_PAGE, page * TILES_PER_PAGE);
  const grid = h("div", { class: `live-grid n${Math.min(shown.length, 9)}` }, shown.map(tileFor));
  main.replaceChildren(h("h1", {}, "Live"), pages > 1 ? pager(page, pages, cameras.length) : null, grid);
}

function pager(page, pages, count) {
  const link = (to, label) =>
    to >= 1 && to <= pages ? h("a", { href: `#/?page=${to}`, rel: label === "Next" ? "next" : "prev" }, label) : null;
  const first = (page - 1) * TILES_PER_PAGE + 1;
  const last = Math.min(page * TILES_PER_PAGE, count);
  return h(
    "nav",
    { class: "pager", "aria-label": "Live pages" },
    link(page - 1, "Previous"),
    h("span", { class: "page" }, `Cameras ${first}–${last} of ${count} (page ${page} of ${pages})`),
    link(page + 1, "Next"),
  );
}
