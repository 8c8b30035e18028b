// Oversight (#/oversight): the audit log with filters and chain verification, the function-check
// dashboard, retention status and erasure log, and the recorder's status (disk, clock, version).

import { api, query } from "./api.js";
import { can } from "./session.js";
import { busy, errorBox, field, formatBytes, formatDuration, formatTime, h, inputToNs, msToInput, note, say, table } from "./ui.js";

function text(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** "from → to" of anything with start_ns/end_ns (or first_ns/last_ns); "" when there is none. */
function rangeText(item, start = "start_ns", end = "end_ns") {
  if (!item || !item[start] || item[start] === "0") return "";
  return `${formatTime(item[start])} → ${formatTime(item[end], { date: false })}`;
}

function auditPanel() {
  const since = h("input", { type: "datetime-local", step: "1", value: msToInput(Date.now() - 3_600_000) });
  const until = h("input", { type: "datetime-local", step: "1" });
  const camera = h("input", { type: "text", placeholder: "any camera" });
  const principal = h("input", { type: "text", placeholder: "anyone" });
  const action = h("input", { type: "text", placeholder: "any (exact, or a prefix ending in *)" });
  const outcome = h("input", { type: "text", placeholder: "any (OK, PERMISSION_DENIED, …)" });
  const rows = h("div", { class: "audit-rows" });
  const messages = h("div", { class: "messages" });
  const search = h("button", { type: "submit", class: "primary" }, "Show");
  const verify = h("button", { type: "button" }, "Verify chain");
  const verdict = h("div", { class: "verdict", role: "status" });

  async function load() {
    const answer = await api(
      "GET",
      `/api/v1/audit${query({
        from: inputToNs(since),
        to: inputToNs(until),
        camera_id: camera.value.trim(),
        principal: principal.value.trim(),
        action: action.value.trim(),
        outcome: outcome.value.trim(),
        page_size: 500,
      })}`,
    );
    const records = ((answer && answer.records) || []).slice().reverse(); // newest first on screen
    rows.replaceChildren(
      table(
        ["#", "time", "principal", "role", "action", "camera", "range", "reason", "outcome"],
        records.map((r) => [
          text(r.seq),
          formatTime(r.time_ns),
          text(r.principal),
          text(r.role),
          text(r.action),
          text(r.camera_id),
          rangeText(r),
          text(r.reason) + (r.case_ref ? ` [${r.case_ref}]` : ""),
          h("span", { class: r.outcome === "OK" ? "ok-text" : "bad-text" }, text(r.outcome)),
        ]),
        { empty: "No audit records match." },
      ),
      answer && answer.next_page_token ? note("Older matching records were left out: narrow the time range.") : "",
    );
  }

  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        busy(search, messages, load);
      },
    },
    field("From", since),
    field("To", until),
    field("Camera", camera),
    field("Principal", principal),
    field("Action", action),
    field("Outcome", outcome),
    search,
  );
  verify.addEventListener("click", () =>
    busy(verify, messages, async () => {
      verdict.replaceChildren(note("Verifying the whole chain…"));
      const v = await api("GET", "/api/v1/audit/verify");
      verdict.replaceChildren(
        v.ok
          ? note(`Chain intact: ${v.records_checked} records checked, head ${String(v.head_hash).slice(0, 16)}…`, "ok")
          : note(`Chain BROKEN: ${v.first_problem} (${v.records_checked} records checked)`, "error"),
      );
    }),
  );
  busy(search, messages, load);
  return h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Audit log"), verify), verdict, form, messages, rows);
}

function findings(list) {
  return (list || []).filter((f) => f.severity !== "ok").map((f) => `${f.check}: ${f.message}`).join("; ");
}

function verdictText(verdict) {
  return h("span", { class: verdict === "ok" ? "ok-text" : "bad-text" }, text(verdict));
}

function functionChecksPanel() {
  const body = h("div", {});
  const messages = h("div", { class: "messages" });
  const run = h("button", { type: "button" }, "Run checks now");

  function render(answer) {
    const newest = answer && answer.newest;
    const cameras = (answer && answer.cameras) || [];
    body.replaceChildren(
      newest
        ? h(
            "p",
            { class: "hint" },
            `Newest check #${newest.id} (${newest.trigger}${newest.requested_by ? ` by ${newest.requested_by}` : ""}) `,
            `finished ${formatTime(newest.finished_ns)}: `,
            verdictText(newest.verdict),
            newest.disk ? ` · disk ${newest.disk.verdict} ${findings(newest.disk.findings)}` : "",
            newest.clock ? ` · clock ${newest.clock.verdict} ${findings(newest.clock.findings)}` : "",
          )
        : note("No function check has run yet."),
      table(
        ["camera", "checked", "state", "verdict", "frames/s (usual)", "bitrate (usual)", "last keyframe", "gaps today", "findings"],
        cameras.map((c) => [
          text(c.camera_id),
          formatTime(c.started_ns),
          text(c.state),
          verdictText(c.verdict),
          `${Number(c.frames_per_s || 0).toFixed(1)} (${Number(c.usual_frames_per_s || 0).toFixed(1)})`,
          `${(Number(c.bitrate_bps || 0) / 1e6).toFixed(2)} (${(Number(c.usual_bitrate_bps || 0) / 1e6).toFixed(2)}) Mbit/s`,
          formatTime(c.last_keyframe_ns),
          c.gaps_today ? `${c.gaps_today} (${formatDuration(c.gap_duration_today_ns)})` : "0",
          findings(c.findings),
        ]),
        { empty: "No camera has been checked yet." },
      ),
    );
  }

  async function load() {
    render(await api("GET", "/api/v1/function-checks"));
  }
  run.addEventListener("click", () =>
    busy(run, messages, async () => {
      body.replaceChildren(note("Checking every camera…"));
      await api("POST", "/api/v1/function-checks/run");
      await load();
    }),
  );
  load().catch((error) => say(messages, errorBox(error, "Function checks")));
  return h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Function checks"), run), messages, body);
}

/** "Confirm the clock": resume age-based erasure after a clock alarm, with a reason (audited). */
function confirmClockForm(messages, reload) {
  const reason = h("input", { type: "text", name: "reason", placeholder: "why the clock is right now (audited)" });
  const button = h("button", { type: "submit" }, "Confirm the clock");
  return h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        busy(button, messages, async () => {
          await api("POST", "/api/v1/retention/confirm-clock", { reason: reason.value.trim() });
          await reload();
        });
      },
    },
    reason,
    button,
  );
}

function retentionPanel() {
  const status = h("div", {});
  const erasures = h("div", {});
  const messages = h("div", { class: "messages" });
  async function load() {
    const r = await api("GET", "/api/v1/retention");
    const alarms = Object.entries(r.alarms || {});
    status.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "age-based erasure"),
        h("dd", {}, r.paused ? "PAUSED (clock in doubt)" : "running"),
        h("dt", {}, "last run"),
        h("dd", {}, `${formatTime(r.last_run_ns)}: ${text(r.last_erased_segments)} segments, ${formatBytes(r.last_erased_bytes)}`),
        h("dt", {}, "disk"),
        h("dd", {}, `${formatBytes(r.free_bytes)} free of ${formatBytes(r.total_bytes)} (keeps ${formatBytes(r.min_free_bytes)} free)`),
        h("dt", {}, "maximum age"),
        h("dd", {}, r.max_age_ns && r.max_age_ns !== "0" ? formatDuration(r.max_age_ns) : "none"),
      ),
      alarms.length ? note(alarms.map(([k, v]) => `${k}: ${v}`).join("; "), "error") : "",
      r.paused && can("holds.release") ? confirmClockForm(messages, load) : "",
    );
    if (!can("holds.view")) return;
    const e = await api("GET", "/api/v1/retention/erasures");
    erasures.replaceChildren(
      table(
        ["day", "camera", "reason", "segments", "bytes", "footage"],
        ((e && e.days) || []).map((d) => [d.day, d.camera_id, d.reason, text(d.segments), formatBytes(d.bytes), rangeText(d, "first_ns", "last_ns")]),
        { empty: "Nothing has been erased in the last 7 days." },
      ),
    );
  }
  load().catch((error) => say(messages, errorBox(error, "Retention")));
  return h("section", { class: "panel" }, h("h2", {}, "Retention"), messages, status, h("h3", {}, "Erasure log"), erasures);
}

function statusPanel() {
  const body = h("div", {});
  const messages = h("div", { class: "messages" });
  api("GET", "/api/v1/status")
    .then((st) => {
      const storage = st.storage || {};
      const clock = st.clock || {};
      const cams = st.cameras || {};
      const alarms = Object.entries(st.alarms || {});
      body.replaceChildren(
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "recorder"),
          h("dd", {}, `${text(st.recorder_id)} · vmsd ${text(st.version)}`),
          h("dt", {}, "running since"),
          h("dd", {}, `${formatTime(st.started_ns)} (${formatDuration(st.uptime_ns)})`),
          h("dt", {}, "disk"),
          h(
            "dd",
            {},
            storage.error
              ? h("span", { class: "bad-text" }, storage.error)
              : `${formatBytes(storage.free_bytes)} free of ${formatBytes(storage.total_bytes)} at ${text(storage.root)} (keeps ${formatBytes(storage.min_free_bytes)} free)`,
          ),
          h("dt", {}, "clock"),
          h(
            "dd",
            { class: clock.synchronized === "yes" ? "ok-text" : "bad-text" },
            `synchronised: ${text(clock.synchronized)} (${text(clock.source)})`,
          ),
          h("dt", {}, "cameras"),
          h("dd", {}, `${text(cams.recording)} recording of ${text(cams.enabled)} enabled (${text(cams.configured)} configured)`),
        ),
        alarms.length ? note(alarms.map(([k, v]) => `${k}: ${v}`).join("; "), "error") : "",
      );
    })
    .catch((error) => say(messages, errorBox(error, "Recorder status")));
  return h("section", { class: "panel" }, h("h2", {}, "Recorder"), messages, body);
}

export function renderOversight(main) {
  const sections = [h("h1", {}, "Oversight")];
  sections.push(statusPanel());
  if (can("audit.read")) sections.push(auditPanel());
  sections.push(functionChecksPanel(), retentionPanel());
  main.replaceChildren(...sections);
}
