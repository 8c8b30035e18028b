"""The management report as one self-contained HTML file: tables, and charts as PNG data: URIs.

matplotlib is an optional extra (`pip install 'vmsd[report]'`): only rendering HTML needs it,
the report as data (JSON) never does. The page loads nothing from anywhere (no scripts, no
external images or fonts), so it opens the same offline, attached to an e-mail or archived.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.reports.build import Report
from vmsd.units import NS_PER_S

MISSING_MATPLOTLIB = (
    "the HTML report draws its charts with matplotlib, which is not installed: pip install 'vmsd[report]'"
)


def require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: draw into memory
        import matplotlib.pyplot as plt
    except ImportError:
        raise VmsdError(ErrorKind.FAILED_PRECONDITION, MISSING_MATPLOTLIB) from None
    return plt


def _time(time_ns: int | None) -> str:
    if time_ns is None:
        return "—"
    return dt.datetime.fromtimestamp(time_ns / NS_PER_S, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(ns: int | None) -> str:
    if ns is None:
        return "not yet"
    seconds = ns // NS_PER_S
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"


def _pct(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10} %"


def _chart(plt: Any, kind: str, labels: Sequence[str], values: Sequence[float], ylabel: str, title: str) -> str:
    figure, axes = plt.subplots(figsize=(7, 2.6), dpi=72)
    try:
        positions = list(range(len(labels)))
        if kind == "barh":
            axes.barh(positions, values, color="#3b6ea5")
            axes.set_yticks(positions, labels)
            axes.set_xlabel(ylabel)
        else:
            axes.bar(positions, values, color="#3b6ea5")
            axes.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
            axes.set_ylabel(ylabel)
        axes.set_title(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        # No timestamp in the PNG: the same report renders to the same bytes.
        figure.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "none") -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f"<p><i>{html.escape(empty)}</i></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table>{f'<tr>{head}</tr>' if any(headers) else ''}{body}</table>"


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%;text-align:left}th{background:#eee}"
    "img{display:block;margin:.5em 0}.fail{color:#a00;font-weight:bold}"
)


def to_html(report: Report) -> str:
    plt = require_matplotlib()
    r = report
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>CCTV management report {_time(r.period_start_ns)} – {_time(r.period_end_ns)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>CCTV management report</h1>",
        _table(
            ["", ""],
            [
                ("Period", f"{_time(r.period_start_ns)} to {_time(r.period_end_ns)}"),
                ("Recorder(s)", ", ".join(r.recorders)),
                ("Generated", _time(r.generated_ns)),
                ("Content SHA-256", r.sha256),
            ],
        ),
        "<h2>Continuity of recording</h2>",
    ]
    if r.cameras:
        labels = [c.camera_id for c in r.cameras]
        parts.append(
            _chart(
                plt, "barh", labels, [c.availability_tenths_pct / 10 for c in r.cameras], "%", "Availability per camera"
            )
        )
    parts.append(
        _table(
            ["camera", "availability", "recorded", "of which erased since", "expected", "gaps by reason"],
            [
                (
                    c.camera_id,
                    _pct(c.availability_tenths_pct),
                    _duration(c.recorded_ns),
                    _duration(c.erased_ns),
                    _duration(c.expected_ns),
                    ", ".join(f"{k}: {c.gaps_by_reason[k]}× {_duration(v)}" for k, v in c.gaps_ns_by_reason.items()),
                )
                for c in r.cameras
            ],
        )
    )
    if r.gaps_ns_by_day:
        days = list(r.gaps_ns_by_day)
        hours = [v / (3600 * NS_PER_S) for v in r.gaps_ns_by_day.values()]
        parts.append(_chart(plt, "bar", days, hours, "hours", "Gaps over time (all cameras, per day)"))
    finding_headers = ["found", "camera", "check", "severity", "message", "fixed", "time to fix"]

    def finding_rows(items: Sequence[Any]) -> list[tuple[object, ...]]:
        return [
            (
                _time(f.time_ns),
                f.camera_id or "(recorder)",
                f.check,
                f.severity,
                f.message,
                _time(f.fixed_ns),
                _duration(f.time_to_fix_ns),
            )
            for f in items
        ]

    parts += [
        "<h2>Function checks</h2>",
        f"<p>{r.checks_run} function check(s) run.</p>",
        _table(finding_headers, finding_rows(r.check_findings), "no findings"),
        "<h2>Recorder and camera clocks</h2>",
        _table(finding_headers, finding_rows(r.clock_findings), "no clock findings"),
        "<h2>Reviews</h2>",
        _table(
            ["when", "who", "role", "camera", "footage", "reason", "case"],
            [
                (
                    _time(v.time_ns),
                    v.principal,
                    v.role,
                    v.camera_id,
                    f"{_time(v.start_ns)} +{_duration(v.end_ns - v.start_ns)}",
                    v.reason,
                    v.case_ref,
                )
                for v in r.reviews
            ],
        ),
        "<h2>Releases (exports)</h2>",
    ]
    if r.releases_by_month:
        months = list(r.releases_by_month)
        parts.append(_chart(plt, "bar", months, list(r.releases_by_month.values()), "releases", "Releases per month"))
    parts += [
        _table(
            ["when", "who", "camera", "case", "reason", "recipient", "export", "manifest SHA-256"],
            [
                (
                    _time(x.time_ns),
                    x.principal,
                    x.camera_id,
                    x.case_ref,
                    x.reason,
                    x.recipient,
                    x.export_id,
                    x.manifest_sha256,
                )
                for x in r.releases
            ],
        ),
        f"<p>{len(r.releases)} export(s) completed and signed (manifest hashes above); {r.exports_failed} failed.</p>",
        "<h2>Evidence holds</h2>",
    ]
    hold_headers = ["id", "cameras", "case", "reason", "by", "opened", "review date", "released", "released by"]

    def hold_rows(items: Sequence[Any]) -> list[tuple[object, ...]]:
        return [
            (
                h.id,
                ", ".join(h.camera_ids),
                h.case_ref,
                h.reason,
                h.created_by,
                _time(h.created_ns),
                _time(h.review_ns),
                _time(h.released_ns),
                h.released_by or "",
            )
            for h in items
        ]

    parts += [
        "<h3>Opened</h3>",
        _table(hold_headers, hold_rows(r.holds_opened)),
        "<h3>Closed</h3>",
        _table(hold_headers, hold_rows(r.holds_closed)),
        "<h3>Open past their review date</h3>",
        _table(hold_headers, hold_rows(r.holds_past_review)),
        "<h2>Erasures</h2>",
        f"<p>Retention rule: footage is erased after {_duration(r.retention_max_age_ns)}. Held segments erased: "
        f"<b>{sum(d.held_erased for d in r.erasures)}</b>.</p>",
        _table(
            ["day", "segments", "bytes", "reasons", "youngest footage erased (age)", "held segments erased"],
            [
                (
                    d.day,
                    d.segments,
                    d.bytes,
                    ", ".join(f"{k}: {v}" for k, v in d.reasons.items()),
                    _duration(d.youngest_age_ns),
                    d.held_erased,
                )
                for d in r.erasures
            ],
        ),
        "<h2>Access</h2>",
        f"<p>{r.denied_requests} request(s) denied.</p>",
        _table(
            ["principal", "role", "requests", "denied"],
            [(a.principal or "(unauthenticated)", a.role, a.requests, a.denied) for a in r.access],
        ),
        "</body></html>",
    ]
    return "\n".join(parts)
