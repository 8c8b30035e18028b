// Evidence (#/evidence): holds (list, add, release) and exports (request, progress, download,
// verification) — the same operations and rules as the gRPC HoldService and ExportService.

import { api, query } from "./api.js";
import { listCameras } from "./cameras.js";
import { can } from "./session.js";
import { busy, errorBox, field, formatBytes, formatTime, h, inputToNs, msToInput, note, say, table } from "./ui.js";

const POLL_MS = 1000;

function rangeText(item) {
  const r = item.range || item.requested || item;
  return `${formatTime(r.start_ns)} → ${formatTime(r.end_ns)}`;
}

function cameraSelect(cameras, chosen, { multiple = false } = {}) {
  return h(
    "select",
    { multiple, size: multiple ? Math.min(cameras.length, 5) : undefined },
    cameras.map((c) => h("option", { value: c.id, selected: c.id === chosen }, c.name ? `${c.name} (${c.id})` : c.id)),
  );
}

function rangeInputs() {
  const now = Date.now();
  return {
    from: h("input", { type: "datetime-local", step: "1", value: msToInput(now - 15 * 60_000) }),
    to: h("input", { type: "datetime-local", step: "1", value: msToInput(now) }),
  };
}

// --- holds

function holdsPanel(cameras, chosen) {
  const messages = h("div", { class: "messages" });
  const list = h("div", {});
  const showReleased = h("input", { type: "checkbox" });

  async function load() {
    try {
      const answer = await api("GET", `/api/v1/holds${query({ include_released: showReleased.checked ? "true" : "" })}`);
      const holds = (answer && answer.holds) || [];
      list.replaceChildren(
        table(
          ["id", "cameras", "footage", "case", "reason", "by", "state", ""],
          holds.map((hold) => [
            String(hold.id),
            (hold.camera_ids || []).join(", "),
            rangeText(hold),
            hold.case_ref || "",
            hold.reason || "",
            `${hold.created_by || ""} ${formatTime(hold.created_ns)}`,
            hold.released_ns && hold.released_ns !== "0"
              ? `released by ${hold.released_by} (${hold.release_reason})`
              : hold.active === false
                ? "lapsed"
                : "active",
            can("holds.release") && !(hold.released_ns && hold.released_ns !== "0") ? releaseForm(hold) : "",
          ]),
          { empty: "No holds." },
        ),
      );
    } catch (error) {
      list.replaceChildren(errorBox(error, "Listing the holds"));
    }
  }

  function releaseForm(hold) {
    const reason = h("input", { type: "text", placeholder: "reason for release", "aria-label": `reason to release hold ${hold.id}` });
    const button = h("button", { type: "submit" }, "Release");
    return h(
      "form",
      {
        class: "inline",
        onsubmit: (event) => {
          event.preventDefault();
          busy(button, messages, async () => {
            await api("POST", `/api/v1/holds/${encodeURIComponent(hold.id)}/release`, { reason: reason.value.trim() });
            say(messages, note(`Hold ${hold.id} released.`, "ok"));
            await load();
          });
        },
      },
      reason,
      button,
    );
  }

  showReleased.addEventListener("change", load);
  const parts = [
    h("h2", {}, "Holds"),
    h("p", { class: "hint" }, "Footage under a hold is never erased by retention."),
    field("Show released holds", showReleased),
    list,
    messages,
  ];
  if (can("holds.add")) {
    const cams = cameraSelect(cameras, chosen, { multiple: true });
    const { from, to } = rangeInputs();
    const caseRef = h("input", { type: "text", placeholder: "e.g. CR-2026-0142" });
    const reason = h("input", { type: "text", placeholder: "why the footage must be kept" });
    const add = h("button", { type: "submit", class: "primary" }, "Place hold");
    parts.push(
      h(
        "form",
        {
          class: "stacked",
          onsubmit: (event) => {
            event.preventDefault();
            busy(add, messages, async () => {
              const hold = await api("POST", "/api/v1/holds", {
                camera_ids: [...cams.selectedOptions].map((o) => o.value),
                from: inputToNs(from),
                to: inputToNs(to),
                case_ref: caseRef.value.trim(),
                reason: reason.value.trim(),
              });
              say(messages, note(`Hold ${hold && hold.id !== undefined ? hold.id : ""} placed.`, "ok"));
              await load();
            });
          },
        },
        h("h3", {}, "Place a hold"),
        field("Cameras", cams),
        field("From", from),
        field("To", to),
        field("Case reference", caseRef),
        field("Reason", reason),
        add,
      ),
    );
  }
  load();
  return h("section", { class: "panel" }, parts);
}

// --- exports

function exportFiles(summary) {
  const id = encodeURIComponent(summary.export_id);
  return (summary.files || []).map((file) =>
    h(
      "li",
      {},
      h("a", { href: `/api/v1/exports/${id}/files/${file.name.split("/").map(encodeURIComponent).join("/")}`, download: "" }, file.name),
      ` ${formatBytes(file.bytes)} · ${file.role}`,
    ),
  );
}

function verification(summary) {
  const v = summary.verification || summary.verified;
  if (v === undefined || v === null) return "not verified yet";
  if (typeof v === "boolean") return v ? "verified" : "FAILED verification";
  if (typeof v === "string") return v;
  return v.ok ? `verified${v.detail ? ` (${v.detail})` : ""}` : `FAILED: ${v.problem || v.first_problem || v.detail || "see the bundle"}`;
}

function exportsPanel(cameras, chosen) {
  const messages = h("div", { class: "messages" });
  const progress = h("div", { class: "export-progress" });
  const list = h("div", {});

  async function load() {
    try {
      const answer = await api("GET", "/api/v1/exports");
      const exports = (answer && answer.exports) || [];
      list.replaceChildren(
        table(
          ["export", "camera", "footage", "case", "recipient", "by", "verification", "files"],
          exports.map((e) => [
            e.export_id,
            e.camera_id,
            rangeText(e),
            e.case_ref || "",
            e.recipient || "",
            `${e.operator || ""} ${formatTime(e.exported_ns)}`,
            verification(e),
            h("details", {}, h("summary", {}, `${(e.files || []).length} file(s)`), h("ul", { class: "files" }, exportFiles(e))),
          ]),
          { empty: "No exports yet." },
        ),
      );
    } catch (error) {
      list.replaceChildren(errorBox(error, "Listing the exports"));
    }
  }

  async function follow(job) {
    const id = encodeURIComponent(job.export_id || job.id);
    for (;;) {
      const state = await api("GET", `/api/v1/exports/${id}/progress`);
      const fraction = Math.round(100 * Number(state.fraction || 0));
      progress.replaceChildren(
        h("progress", { max: 100, value: fraction }),
        ` ${state.phase || ""} ${fraction} %`,
      );
      if (state.error) throw Object.assign(new Error(state.error.message || String(state.error)), state.error);
      if (state.phase === "done" || state.done) return state.done || state;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  const parts = [h("h2", {}, "Exports"), list, messages];
  if (can("export.create")) {
    const cam = cameraSelect(cameras, chosen);
    const { from, to } = rangeInputs();
    const caseRef = h("input", { type: "text", placeholder: "e.g. CR-2026-0142" });
    const reason = h("input", { type: "text", placeholder: "why the footage is released" });
    const recipient = h("input", { type: "text", placeholder: "who receives it, e.g. PC 4471, City Police" });
    const redact = h("input", { type: "checkbox" });
    const submit = h("button", { type: "submit", class: "primary" }, "Request export");
    parts.splice(
      1,
      0,
      h(
        "form",
        {
          class: "stacked",
          onsubmit: (event) => {
            event.preventDefault();
            busy(submit, messages, async () => {
              const job = await api("POST", "/api/v1/exports", {
                camera_id: cam.value,
                from: inputToNs(from),
                to: inputToNs(to),
                case_ref: caseRef.value.trim(),
                reason: reason.value.trim(),
                recipient: recipient.value.trim(),
                redact: redact.checked,
              });
              const done = await follow(job);
              progress.replaceChildren(
                note(`Export ${done.export_id || job.export_id} is ready: ${verification(done)}.`, "ok"),
                h("ul", { class: "files" }, exportFiles({ ...job, ...done })),
              );
              await load();
            });
          },
        },
        h("h3", {}, "Request an export"),
        field("Camera", cam),
        field("From", from),
        field("To", to),
        field("Case reference", caseRef),
        field("Reason", reason),
        field("Recipient", recipient),
        field("Also a redacted working copy (privacy masks burnt in)", redact),
        submit,
        progress,
      ),
    );
  }
  load();
  return h("section", { class: "panel" }, parts);
}

export async function renderEvidence(main, params) {
  main.replaceChildren(h("h1", {}, "Evidence"), note("Loading…"));
  let cameras = [];
  try {
    cameras = await listCameras();
  } catch (error) {
    main.replaceChildren(h("h1", {}, "Evidence"), errorBox(error, "Listing the cameras"));
    return;
  }
  const chosen = params.get("camera") || "";
  const sections = [h("h1", {}, "Evidence")];
  if (can("holds.view")) sections.push(holdsPanel(cameras, chosen));
  if (can("export.create") || can("export.download")) sections.push(exportsPanel(cameras, chosen));
  if (sections.length === 1) sections.push(note("Your role has no evidence permissions."));
  main.replaceChildren(...sections);
}
