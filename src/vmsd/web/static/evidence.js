// Evidence (#/evidence): holds (list, add, release) and exports (request, progress, download,
// verification) — the same operations and rules as the gRPC HoldService and ExportService.

import { api, query } from "./api.js";
import { listCameras } from "./cameras.js";
import { can } from "./session.js";
import { busy, errorBox, field, formatBytes, formatTime, h, inputToNs, msToInput, note, say, table } from "./ui.js";

const POLL_MS = 1000;

function rangeText(item) {
  return `${formatTime(item.start_ns)} → ${formatTime(item.end_ns)}`;
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
    const caseRef = h("input", { type: "text", name: "case_ref", placeholder: "e.g. CR-2026-0142" });
    const reason = h("input", { type: "text", name: "reason", placeholder: "why the footage must be kept" });
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

const VERDICTS = {
  verified: "verified against this recorder's key",
  intact_key_not_checked: "intact (signature key not checked)",
  failed: "FAILED verification",
};

/** The last verification of a bundle, in words. */
function verification(bundle) {
  const v = bundle.verification;
  if (!v) return h("span", { class: "hint" }, "not verified yet");
  const words = VERDICTS[v.verdict] || v.verdict;
  const problems = (v.problems || []).join("; ");
  return h(
    "span",
    { class: v.verdict === "failed" ? "bad-text" : "ok-text", title: (v.checks || []).join("\n") },
    `${words}${problems ? `: ${problems}` : ""} (${formatTime(v.checked_ns)})`,
  );
}

function exportUrl(exportId) {
  return `/api/v1/exports/${encodeURIComponent(exportId)}`;
}

function exportsPanel(cameras, chosen) {
  const messages = h("div", { class: "messages" });
  const progress = h("div", { class: "export-progress", role: "status" });
  const list = h("div", {});

  function verifyButton(bundle) {
    const button = h("button", { type: "button" }, "Verify");
    button.addEventListener("click", () =>
      busy(button, messages, async () => {
        await api("POST", `${exportUrl(bundle.export_id)}/verify`);
        await load();
      }),
    );
    return button;
  }

  async function load() {
    try {
      const answer = await api("GET", "/api/v1/exports");
      const bundles = (answer && answer.exports) || [];
      const jobs = (answer && answer.jobs) || [];
      list.replaceChildren(
        table(
          ["export", "camera", "footage", "case", "recipient", "by", "verification", "download"],
          bundles
            .slice()
            .reverse()
            .map((e) => [
              e.export_id,
              e.camera_id,
              rangeText(e),
              e.case_ref || "",
              e.recipient || "",
              `${e.requested_by || ""} ${formatTime(e.exported_ns)}`,
              h("span", {}, verification(e), " ", verifyButton(e)),
              h(
                "span",
                {},
                h("a", { href: e.download_url, download: "" }, "bundle.tar"),
                ` ${formatBytes(e.bytes)}, ${(e.files || []).length} files`,
              ),
            ]),
          { empty: "No finished exports." },
        ),
        jobs.length
          ? table(
              ["export", "camera", "footage", "state", "why"],
              jobs.map((j) => [
                j.export_id,
                j.camera_id,
                rangeText(j),
                `${j.state} ${j.phase || ""} ${Math.round(100 * Number(j.fraction || 0))} %`,
                j.error ? j.error.message : "",
              ]),
            )
          : "",
      );
    } catch (error) {
      list.replaceChildren(errorBox(error, "Listing the exports"));
    }
  }

  /** Poll the export until it is done (its bundle) or failed (thrown in the API's words). */
  async function follow(exportId) {
    for (;;) {
      const state = await api("GET", exportUrl(exportId));
      const fraction = Math.round(100 * Number(state.fraction || 0));
      progress.replaceChildren(h("progress", { max: 100, value: fraction }), ` ${state.phase || state.state} ${fraction} %`);
      if (state.state === "failed") {
        const error = state.error || {};
        throw Object.assign(new Error(error.message || "the export failed"), { kind: error.kind });
      }
      if (state.state === "done") return state;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  const parts = [h("h2", {}, "Exports"), list, messages];
  if (can("export.create")) {
    const cam = cameraSelect(cameras, chosen);
    const { from, to } = rangeInputs();
    const caseRef = h("input", { type: "text", name: "case_ref", placeholder: "e.g. CR-2026-0142" });
    const reason = h("input", { type: "text", name: "reason", placeholder: "why the footage is released" });
    const recipient = h("input", { type: "text", name: "recipient", placeholder: "who receives it, e.g. PC 4471, City Police" });
    const redact = h("input", { type: "checkbox", name: "redact" });
    const submit = h("button", { type: "submit", class: "primary" }, "Request export");
    parts.splice(
      1,
      0,
      h(
        "form",
        {
          class: "stacked export-form",
          onsubmit: (event) => {
            event.preventDefault();
            busy(submit, messages, async () => {
              progress.replaceChildren();
              const job = await api("POST", "/api/v1/exports", {
                camera_id: cam.value,
                from: inputToNs(from),
                to: inputToNs(to),
                case_ref: caseRef.value.trim(),
                reason: reason.value.trim(),
                recipient: recipient.value.trim(),
                redact: redact.checked,
              });
              try {
                const done = await follow(job.export_id);
                progress.replaceChildren(
                  note(`Export ${done.export_id} is ready (${formatBytes(done.bytes)}).`, "ok"),
                  h("p", {}, h("a", { href: done.download_url, download: "" }, "Download the bundle (tar)"), " · ", verification(done)),
                );
              } finally {
                await load();
              }
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
