// Oversight (#/oversight): the audit log with filters and chain verification, the function-check
// dashboard, retention status and erasure log, and the recorder's status (disk, clock, version).

import { api, query } from "./api.js";
import { can } from "./session.js";
import { busy, errorBox, field, formatBytes, formatDuration, formatTime, h, inputToNs, msToInput, note, say, table } from "./ui.js";

function text(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function rangeText(r) {
  if (!r || !r.start_ns || r.start_ns === "0") return "";
  return `${formatTime(r.start_ns)} → ${formatTime(r.end_ns, { date: false })}`;
}

function auditPanel() {
  const since = h("input", { type: "datetime-local", step: "1", value: msToInput(Date.now() - 3_600_000) });
  const until = h("input", { type: "datetime-local", step: "1" });
  const camera = h("input", { type: "text", placeholder: "any camera" });
  const principal = h("input", { type: "text", placeholder: "anyone" });
  const action = h("input", { type: "text", placeholder: "any action (substring)" });
  const rows = h("div", { class: "audit-rows" });
  const messages = h("div", { class: "messages" });
  const search = h("button", { type: "submit", class: "primary" }, "Show");
  const verify = h("button", { type: "button" }, "Verify chain");
  const verdict = h("div", { class: "verdict", role: "status" });

  async function load() {
    const answer = await api(
      "GET",
      `/api/v1/audit${query({ from: inputToNs(since), to: inputToNs(until), camera: camera.value.trim(), principal: principal.value.trim(), page_size: 500 })}`,
    );
    const wanted = action.value.trim().toLowerCase();
    const records = ((answer && answer.records) || []).filter((r) => !wanted || String(r.action).toLowerCase().includes(wanted));
    records.reverse(); // newest first on screen
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
          rangeText(r.range),
          text(r.reason) + (r.case_ref ? ` [${r.case_ref}]` : ""),
          h("span", { class: r.outcome === "OK" ? "ok-text" : "bad-text" }, text(r.outcome)),
        ]),
        { empty: "No audit records match." },
      ),
      answer && answer.truncated ? note("Older matching records were left out: narrow the time range.") : "",
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
    search,
  );
  verify.addEventListener("click", () =>
    busy(verify, messages, async () => {
      verdict.replaceChildren(note("Verifying the whole chain…"));
      const v = await api("POST", "/api/v1/audit/verify");
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

function functionChecksPanel() {
  const body = h("div", {});
  const messages = h("div", { class: "messages" });
  const run = h("button", { type: "button" }, "Run checks now");

  function render(answer) {
    const cameras = (answer && (answer.cameras || (answer.report && answer.report.cameras))) || [];
    const when = answer && (answer.checked_ns || answer.time_ns || (answer.report && answer.report.checked_ns));
    body.replaceChildren(
      when ? h("p", { class: "hint" }, `Last run ${formatTime(when)}`) : "",
      table(
        ["camera", "state", "verdict", "fps", "bitrate", "keyframe", "gaps today", "problems"],
        cameras.map((c) => [
          text(c.camera_id || c.id),
          text(c.state),
          h("span", { class: c.verdict === "ok" || c.verdict === "pass" ? "ok-text" : "bad-text" }, text(c.verdict)),
          text(c.fps !== undefined ? Number(c.fps).toFixed(1) : ""),
          c.bitrate_bps !== undefined ? `${(Number(c.bitrate_bps) / 1e6).toFixed(2)} Mbit/s` : "",
          c.keyframe_interval_ns !== undefined ? formatDuration(c.keyframe_interval_ns) : text(c.keyframe),
          text(c.gaps_today),
          text((c.problems || c.findings || []).join ? (c.problems || c.findings || []).join("; ") : c.problems),
        ]),
        { empty: "No function check has run yet." },
      ),
    );
  }

  async function load() {
    render(await api("GET", "/api/v1/function-checks"));
  }
  run.addEventListener("click", () =>
    busy(run, messages, async () => {
      body.replaceChildren(note("Checking every camera…"));
      render(await api("POST", "/api/v1/function-checks/run"));
    }),
  );
  load().catch((error) => say(messages, errorBox(error, "Function checks")));
  return h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Function checks"), run), messages, body);
}

function retentionPanel() {
  const status = h("div", {});
  const erasures = h("div", {});
  const messages = h("div", { class: "messages" });
  (async () => {
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
    );
    const e = await api("GET", "/api/v1/retention/erasures");
    erasures.replaceChildren(
      table(
        ["day", "camera", "reason", "segments", "bytes", "footage"],
        ((e && e.days) || []).map((d) => [d.day, d.camera_id, d.reason, text(d.segments), formatBytes(d.bytes), rangeText(d.footage)]),
        { empty: "Nothing has been erased." },
      ),
    );
  })().catch((error) => say(messages, errorBox(error, "Retention")));
  return h("section", { class: "panel" }, h("h2", {}, "Retention"), messages, status, h("h3", {}, "Erasure log"), erasures);
}

function statusPanel() {
  const body = h("div", {});
  const messages = h("div", { class: "messages" });
  api("GET", "/api/v1/status")
    .then((st) => {
      const facts = [];
      for (const [key, value] of Object.entries(st || {})) {
        let shown = text(value);
        if (/bytes$/.test(key)) shown = formatBytes(value);
        else if (/_ns$/.test(key) && /time|now|clock|since|started/.test(key)) shown = formatTime(value);
        facts.push(h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, shown));
      }
      body.replaceChildren(h("dl", { class: "facts" }, facts));
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
