"""Turn the figures of one ``bench/run.py`` invocation into ``report.md`` and PNG plots.

Contract: ``render(results, meta)`` is pure (figures in, Markdown out) and never invents a
number: a figure a scenario did not produce is shown as "—" and its goal as "not measured".
``plot(results, out_dir)`` writes one PNG per scenario that has figures and returns their file
names; without matplotlib (the ``bench`` extra) it returns an empty list.
"""

# ruff: noqa: E501  (table rows read best one per line)

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

# Section titles, in report order; the smoke test checks that each appears.
SECTIONS = {
    "recording": "Recording cost",
    "capacity": "Capacity",
    "search": "Search",
    "relay": "Live relay",
    "browser_live": "Browser live",
    "export": "Export",
    "crash": "Crash loss",
    "startup": "Start-up under load",
    "ingest_spike": "Native ingest spike",
    "failover": "Site failover",
}


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def pct(cores: float | None) -> str:
    return "—" if cores is None else f"{100 * cores:.2f} %"


def verdict(value: float | None, ok: Callable[[float], bool]) -> str:
    if value is None:
        return "not measured"
    return "met" if ok(value) else "**missed**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _error(section: Any) -> list[str]:
    return [f"Scenario failed: `{section['error']}`", ""] if isinstance(section, dict) and "error" in section else []


# -- sections -------------------------------------------------------------------------------------


def _recording(runs: list[dict], goals: list[list[str]]) -> list[str]:
    out = [
        'Per N: one vmsd recording N cameras with the FFmpeg source (`source = "ffmpeg"`, the fallback), '
        'then with the native RTSP client (`source = "native"`, the default), then N × `ffmpeg '
        "-rtsp_transport tcp -i URL -c copy -f segment "
        "-segment_time 60` (what Frigate runs per camera), against the same simulator. CPU = average cores "
        "over the window; CPU-seconds per recorded camera-second divides the window's CPU by the footage "
        "kept (vmsd: frames in the window, from its catalogue; ffmpeg: its share of frames kept over its "
        "whole run). RSS per camera = total RSS / N.",
        "",
    ]
    rows = []
    for r in runs:
        if "error" in r:
            out += _error(r)
            continue
        v, f, q, n = r["vmsd"], r["ffmpeg"], r["ratios_vmsd_over_ffmpeg"], r["cameras"]
        rows += [
            [f'{n} cams, source = "ffmpeg": CPU per camera', pct(v["cpu_cores_per_camera"]), pct(f["cpu_cores_per_camera"]), fmt(q["cpu"])],
            [f"{n} cams: CPU-seconds per recorded camera-second", fmt(v["cpu_s_per_recorded_s"]), fmt(f["cpu_s_per_recorded_s"]), fmt(q.get("cpu_per_recorded_s"))],
            [f"{n} cams: RSS per camera (MiB)", fmt(v["rss_mib_per_camera"]), fmt(f["rss_mib_per_camera"]), fmt(q["rss"])],
            [f"{n} cams: vmsd RSS above its 0-camera base ({v['rss_base_mib']} MiB), per camera", fmt(v["rss_above_base_mib_per_camera"]), "", ""],
            [f"{n} cams: PSS total (MiB)", fmt(v["pss_mib"]), fmt(f["pss_mib"]), fmt(q["pss"])],
            [
                f"{n} cams: frames recorded / expected (upper bound)",
                f"{v['recorded']['frames']} / {v['recorded']['frames_expected']}",
                f"{f['recorded']['frames']} / {f['recorded']['frames_expected']}",
                "",
            ],
            [f"{n} cams: simulator CPU (cores)", fmt(v["simulator_cpu_cores"]), fmt(f["simulator_cpu_cores"]), ""],
        ]  # fmt: skip
        nat = r.get("vmsd_native")
        if nat is not None:
            qn = r["ratios_native_over_ffmpeg"]
            rows += [
                [f'{n} cams, source = "native": CPU per camera', pct(nat["cpu_cores_per_camera"]), pct(f["cpu_cores_per_camera"]), fmt(qn["cpu"])],
                [f'{n} cams, source = "native": RSS above base per camera, window mean (largest)', f"{fmt(nat['rss_above_base_mib_per_camera'])} ({fmt(nat['rss_above_base_max_mib_per_camera'])})", "", ""],
                [f'{n} cams, source = "native": frames in window / expected', f"{nat['recorded']['frames_in_window']} / {nat['recorded']['frames_expected_in_window']}", "", ""],
            ]  # fmt: skip
            goals.append(
                [f'Recording CPU, {n} cams, source = "native" (vmsd/ffmpeg)', "≤ 0.6×", fmt(qn["cpu"]), verdict(qn["cpu"], lambda x: x <= 0.6)]
            )  # fmt: skip
            goals.append(
                [
                    f'Recording RSS above base per camera, {n} cams, source = "native"',
                    "≤ 2 MiB",
                    f"{fmt(nat['rss_above_base_mib_per_camera'])} MiB",
                    verdict(nat["rss_above_base_mib_per_camera"], lambda x: x <= 2),
                ]
            )
        goals.append(
            [
                f'Recording CPU, {n} cams, source = "ffmpeg" (vmsd/ffmpeg)',
                "≤ 0.6×",
                fmt(q["cpu"]),
                verdict(q["cpu"], lambda x: x <= 0.6),
            ]
        )
        goals.append(
            [
                f"Recording RSS per camera, {n} cams",
                "≤ 8 MB",
                f"{fmt(v['rss_mib_per_camera'])} MiB",
                verdict(v["rss_mib_per_camera"], lambda x: x * 1.048576 <= 8),
            ]
        )
    if rows:
        first = next(r for r in runs if "error" not in r)
        out.insert(0, f"{first['stream']}; {first['seconds']} s window after {first['warmup_s']} s warm-up.")
        out.insert(1, "")
        out += _table(["", "vmsd", "ffmpeg × N", "vmsd / ffmpeg"], rows)
    return out


# Issue #16: 192 cameras on these 2 cores with zero gaps (it was 128 before the native client).
CAPACITY_GOAL = 192


def _capacity(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        goals.append(["Capacity (cameras, 0 gaps, 0 lost)", f"≥ {CAPACITY_GOAL}", "—", "not measured"])
        return _error(r)
    out = [
        f"Ladder {r['steps']}, {r['seconds']} s per step after {r['warmup_s']} s warm-up, vmsd's cameras on source "
        f"{r.get('source', 'ffmpeg')}; a fresh simulator per step, "
        "running on the same machine. A step passes with every camera recorded, no gap and no lost frame "
        "(vmsd: catalogue; ffmpeg: processes up, files readable, packet count).",
        "",
    ]
    rows = [
        [f"{run['system']} × {run['cameras']}", "pass" if run["passed"] else "**fail**", run["why"],
         fmt(run["cpu_cores"]), fmt(run["simulator_cpu_cores"]), fmt(run["rss_mib"])]
        for run in r["runs"]
    ]  # fmt: skip
    out += _table(["run", "result", "why", "recorder cores", "simulator cores", "RSS MiB"], rows)
    cap = r["capacity"]
    top = r["steps"][-1]
    shown = {s: (f"≥ {c}" if r["ladder_exhausted"][s] else str(c)) for s, c in cap.items() if c is not None}
    out += [
        "",
        f"Capacity: vmsd {shown.get('vmsd', '—')} cameras, ffmpeg {shown.get('ffmpeg', '—')} "
        f"(ratio {fmt(cap['vmsd'] / cap['ffmpeg'] if cap.get('ffmpeg') else None)}).",
    ]
    goals.append(
        [
            "Capacity (cameras, 0 gaps, 0 lost)",
            f"≥ {CAPACITY_GOAL}",
            shown.get("vmsd", "—"),
            verdict(cap["vmsd"], lambda x: x >= CAPACITY_GOAL),
        ]
    )
    if top < CAPACITY_GOAL:
        goals[-1][3] += f" (ladder tops out at {top})"
    return out


def _search(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        return _error(r)
    out = [
        f"{r['cameras']} cameras × {r['days']} days of 60 s segments ({r['segments']} rows), {r['calls']} Search "
        "calls per range length through the real gRPC server on loopback. Peer: the same ranges read "
        "straight from the SQLite file (no gRPC, no merging) — the floor.",
        "",
    ]
    rows = []
    for label in r["vmsd"]:
        v, s, q = r["vmsd"][label], r["sqlite"][label], r["ratios_vmsd_over_sqlite"][label]
        rows.append([f"{label} p50 (ms)", fmt(v["p50_ms"]), fmt(s["p50_ms"]), fmt(q["p50_ms"])])
        rows.append([f"{label} p99 (ms)", fmt(v["p99_ms"]), fmt(s["p99_ms"]), fmt(q["p99_ms"])])
    out += _table(["", "vmsd gRPC", "SQLite floor", "vmsd / floor"], rows)
    for label, limit in (("1h", 2.0), ("24h", 10.0)):
        p99 = r["vmsd"].get(label, {}).get("p99_ms")
        goals.append(
            [f"Search {label} p99", f"≤ {limit:g} ms", f"{fmt(p99)} ms", verdict(p99, lambda x, lim=limit: x <= lim)]
        )
    return out


def _relay(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        return _error(r)
    out = [
        f"One camera ({r['stream']}); vmsd's gRPC relay vs GStreamer's RTSP server relaying the same mount "
        "(`rtspsrc ! rtph264depay ! rtph264pay`, shared) to the same number of RTSP/TCP viewers, "
        f"{r['seconds']} s window. Idle baseline (one primer viewer on each, which keeps both relays warm): vmsd {fmt(r['idle_cores']['vmsd'])} cores, "
        f"GStreamer {fmt(r['idle_cores']['gstreamer'])} cores. Latency added = "
        "viewer arrival − arrival at a reference viewer on the camera itself; first frame = connect → "
        f"first complete keyframe. Latency is sampled on {r.get('latency_sampled_viewers', 'all')} viewers per count.",
        "",
    ]
    rows = []
    for count, fig in r["viewers"].items():
        v, g, q = fig["vmsd"], fig["gstreamer"], fig["ratios_vmsd_over_gstreamer"]
        rows += [
            [f"{count} viewers: CPU per viewer", pct(v["cores_per_viewer"]), pct(g["cores_per_viewer"]), fmt(q["cores_per_viewer"])],
            [f"{count} viewers: added latency p50 (ms)", fmt(v["latency_p50_ms"]), fmt(g["latency_p50_ms"]), fmt(q["latency_p50_ms"])],
            [f"{count} viewers: added latency p99 (ms)", fmt(v["latency_p99_ms"]), fmt(g["latency_p99_ms"]), fmt(q["latency_p99_ms"])],
            [f"{count} viewers: first frame p50 (ms)", fmt(v["first_frame_p50_ms"]), fmt(g["first_frame_p50_ms"]), fmt(q["first_frame_p50_ms"])],
            [f"{count} viewers: first frame p99 (ms)", fmt(v["first_frame_p99_ms"]), fmt(g["first_frame_p99_ms"]), ""],
            [f"{count} viewers: frames matched / errors", f"{v['frames_matched']} / {v['viewer_errors']}", f"{g['frames_matched']} / {g['viewer_errors']}", ""],
        ]  # fmt: skip
        cpu_ratio = q["cores_per_viewer"]
        cpu_status = verdict(cpu_ratio, lambda x: x <= 3)
        if cpu_ratio is None and g["cores_per_viewer"] is not None and g["cores_per_viewer"] <= 0:
            # /proc counts CPU in clock ticks (10 ms): a short window with few viewers may show none.
            cpu_status = "no ratio: GStreamer's CPU above idle was below /proc's resolution"
        goals.append([f"Relay CPU per viewer, {count} viewers (vmsd/GStreamer)", "≤ 3×", fmt(cpu_ratio), cpu_status])
        if count == "100":
            total = v["cores_per_viewer"] * 100
            goals.append(
                ["Relay, 100 viewers, cores above idle", "≤ 0.3", fmt(total), verdict(total, lambda x: x <= 0.3)]
            )
        goals.append(
            [
                f"Relay added latency p99, {count} viewers",
                "≤ 50 ms",
                f"{fmt(v['latency_p99_ms'])} ms",
                verdict(v["latency_p99_ms"], lambda x: x <= 50),
            ]
        )
        goals.append(
            [
                f"Relay first frame p99, {count} viewers",
                "≤ 150 ms",
                f"{fmt(v['first_frame_p99_ms'])} ms",
                verdict(v["first_frame_p99_ms"], lambda x: x <= 150),
            ]
        )
    out += _table(["", "vmsd", "GStreamer", "vmsd / GStreamer"], rows)
    return out


def _browser_live(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        return _error(r)
    out = [
        f"One camera ({r['stream']}); N viewers of vmsd's live WebSocket (fMP4 for Media Source Extensions, "
        "what the console's live grid opens), then N of vmsd's gRPC relay, then N of GStreamer's RTSP relay "
        f"of the same mount, in the same run; {r['seconds']} s window each. Idle baseline (one primer viewer "
        f"on each of the three): vmsd {fmt(r['idle_cores']['vmsd'])} cores, GStreamer "
        f"{fmt(r['idle_cores']['gstreamer'])} cores. Send delay = a video frame's arrival at vmsd's hub → "
        "handed to the viewer's socket (the daemon's `vmsd_live_send_delay_seconds` histogram over the window; "
        "p50/p99 interpolated within buckets, the share ≤ 50 ms exact). Added latency = viewer arrival − a "
        "reference viewer's arrival from the camera itself (sampled viewers).",
        "",
    ]
    rows = []
    counts = list(r["viewers"])
    for count in counts:
        fig = r["viewers"][count]
        w, g, s, q = fig["websocket"], fig["grpc"], fig["gstreamer"], fig["cpu_ratios_over_gstreamer"]
        wd, gd = w["send_delay"], g["send_delay"]
        rows += [
            [f"{count} viewers: CPU per viewer", pct(w["cores_per_viewer"]), pct(g["cores_per_viewer"]), pct(s["cores_per_viewer"])],
            [f"{count} viewers: CPU per viewer / GStreamer's", fmt(q["websocket"]), fmt(q["grpc"]), "1"],
            [f"{count} viewers: send delay p50 / p99 (ms)", f"{fmt(wd['p50_ms'])} / {fmt(wd['p99_ms'])}", f"{fmt(gd['p50_ms'])} / {fmt(gd['p99_ms'])}", ""],
            [f"{count} viewers: frames sent ≤ 50 ms after arrival", fmt(wd["within_50ms"], 4), fmt(gd["within_50ms"], 4), ""],
            [f"{count} viewers: added latency p50 / p99 (ms)", f"{fmt(w['latency_p50_ms'])} / {fmt(w['latency_p99_ms'])}", f"{fmt(g['latency_p50_ms'])} / {fmt(g['latency_p99_ms'])}", f"{fmt(s['latency_p50_ms'])} / {fmt(s['latency_p99_ms'])}"],
            [f"{count} viewers: first frame p50 (ms)", fmt(w["first_frame_p50_ms"]), fmt(g["first_frame_p50_ms"]), fmt(s["first_frame_p50_ms"])],
            [f"{count} viewers: viewer errors", str(w["viewer_errors"]), str(g["viewer_errors"]), str(s["viewer_errors"])],
        ]  # fmt: skip
        goals.append(
            [
                f"Browser live send delay p99, {count} viewers (hub arrival → WebSocket send)",
                "≤ 50 ms",
                f"{fmt(wd['p99_ms'])} ms",
                verdict(wd["p99_ms"], lambda x: x <= 50),
            ]
        )
    if counts:
        top = counts[-1]
        for system, label in (("websocket", "WebSocket"), ("grpc", "gRPC")):
            value = r["viewers"][top]["cpu_ratios_over_gstreamer"][system]
            goals.append(
                [f"Live CPU per viewer, {top} viewers, {label} / GStreamer", "≤ 3×", fmt(value), verdict(value, lambda x: x <= 3)]
            )  # fmt: skip
    out += _table(["", "WebSocket (vmsd)", "gRPC (vmsd)", "GStreamer RTSP"], rows)
    return out


def _export(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        return _error(r)
    out = [
        f"{r['footage_s']:.0f} s of one camera ({r['segments']} segments, {r['footage_bytes'] / 1e9:.2f} GB), "
        "page cache warm for all; best of the repeats.",
        "",
    ]
    res = r["results"]
    rows = [
        [name, fmt(x["wall_s"]), fmt(x["cpu_s"]), fmt(x["footage_x_realtime"]), fmt(x["ratio_vs_ffmpeg"])]
        for name, x in res.items()
    ]
    out += _table(["", "wall s", "CPU s", "× real time", "wall / (ffmpeg + sha256sum)"], rows)
    mine = res.get("vmsd export (with originals)", {}).get("wall_s")
    peer = res.get("ffmpeg concat -c copy + sha256sum", {}).get("wall_s")
    speedup = peer / mine if mine and peer else None
    goals.append(
        ["Export speed-up vs ffmpeg concat + sha256sum", "≥ 2×", f"{fmt(speedup)}×", verdict(speedup, lambda x: x >= 2)]
    )
    return out


def _crash(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        goals.append(["Crash loss, worst of all crashes", "≤ 2 s", "—", "not measured"])
        return _error(r)
    v, f = r["vmsd"], r.get("ffmpeg")
    out = [
        f"{r['crashes']} × `kill -9` after {min(r['alive_s'])}–{max(r['alive_s'])} s of recording, "
        f"{r['cameras']} camera(s); lost = kill time − end of the last durable footage (catalogue crash gap, "
        "checked with ffprobe).",
        "",
    ]
    q = r.get("ratios_vmsd_over_ffmpeg", {})
    rows = [
        ["lost per crash, max (s)", fmt(v["lost_max_s"]), fmt(f and f["lost_max_s"]), fmt(q.get("lost_max_s"))],
        ["lost per crash, mean (s)", fmt(v["lost_mean_s"]), fmt(f and f["lost_mean_s"]), fmt(q.get("lost_mean_s"))],
        ["lost per crash, p50 (s)", fmt(v["lost_p50_s"]), fmt(f and f["lost_p50_s"]), ""],
        ["restart → recording, max (s)", fmt(v["restart_to_recording_max_s"]), "—", ""],
        ["interrupted files shorter than the catalogue", fmt(v["interrupted_files_shorter_than_catalogue"]), "—", ""],
        ["crashes without a crash gap", fmt(v["crashes_without_a_crash_gap"]), "—", ""],
        ["`vmsd fsck` exit code afterwards", fmt(v["fsck_exit_code"]), "—", ""],
    ]
    out += _table(["", "vmsd", "ffmpeg -f segment", "vmsd / ffmpeg"], rows)
    goals.append(
        [
            "Crash loss, worst of all crashes",
            "≤ 2 s",
            f"{fmt(v['lost_max_s'])} s",
            verdict(v["lost_max_s"], lambda x: x <= 2),
        ]
    )
    resume = v["restart_to_recording_max_s"]
    goals.append(
        [
            "Restart → recording after a crash (contract)",
            "< 10 s",
            f"{fmt(resume)} s",
            verdict(resume, lambda x: x < 10),
        ]
    )
    return out


def _startup(r: dict, goals: list[list[str]]) -> list[str]:
    if "error" in r:
        goals.append(["Start-up: READY=1 on a loaded box", "≤ 120 s", "—", "not measured"])
        return _error(r)
    out = [
        f"{r['stream']}; vmsd started with N cameras while {r['busy_cores']} busy loop(s) spin a full core each "
        f"and a fresh simulator serves the N cameras on the same machine. vmsd gets systemd's NOTIFY_SOCKET "
        f"and WatchdogSec={r['watchdog_s']:g} s; every time is from spawning vmsd. Recording = the camera's first "
        f"segment is in the catalogue (polled every 0.1 s). Watchdog: from READY=1 until {r['settle_s']:g} s after "
        "every camera records; a gap longer than WatchdogSec is a restart under systemd.",
        "",
    ]
    runs = r["runs"]
    header = ["", *[f"{run['cameras']} cams" for run in runs]]
    figures = [
        ("gRPC port open (s)", lambda x: x["port_open_s"]),
        ("gRPC Health/Check SERVING (s)", lambda x: x["grpc_serving_s"]),
        ("READY=1 (s)", lambda x: x["ready_s"]),
        ("all recorders started, after daemon_started (ms)", lambda x: x["cameras_started_ms"]),
        ("first camera recording (s)", lambda x: x["first_camera_recording_s"]),
        ("every camera recording (s)", lambda x: x["all_cameras_recording_s"]),
        ("cameras recording at the end", lambda x: x["cameras_recording"]),
        ("watchdog pings / withheld", lambda x: f"{x['watchdog']['pings']} / {x['watchdog']['withheld']}"),
        ("longest gap between watchdog pings (s)", lambda x: x["watchdog"]["max_gap_s"]),
        ("vmsd CPU until every camera records (cores)", lambda x: x["vmsd_cpu_cores"]),
        ("busy loop CPU (cores)", lambda x: x["busy_loop_cpu_cores"]),
        ("simulator CPU (cores)", lambda x: x["simulator_cpu_cores"]),
        ("SIGTERM → exit (s)", lambda x: x["sigterm_to_exit_s"]),
    ]
    rows = [[label, *[fmt(get(run)) for run in runs]] for label, get in figures]
    out += _table(header, rows)
    for run in runs:
        n = run["cameras"]
        goals.append(
            [f"Start-up, {n} cams on a loaded box: READY=1", "≤ 120 s", f"{fmt(run['ready_s'])} s",
             verdict(run["ready_s"], lambda x: x <= 120)]
        )  # fmt: skip
        watchdog = run["watchdog"]
        gap = watchdog["max_gap_s"]
        goals.append(
            [f"Start-up, {n} cams: watchdog never withheld nor late", f"0, gap < {run['watchdog_s']:g} s",
             f"{watchdog['withheld']}, {fmt(gap)} s",
             verdict(gap, lambda x, w=watchdog, lim=run["watchdog_s"]: w["withheld"] == 0 and x < lim)]
        )  # fmt: skip
    return out


def _ingest_spike(runs: list[dict], goals: list[list[str]]) -> list[str]:
    out = [
        "Issue #16's go/no-go: one process holding N RTSP/TCP-interleaved sessions, draining its sockets every "
        "few ms on one asyncio loop (`recv_into` a preallocated buffer), depacketising H.264 into access units "
        "and discarding them — against N × `ffmpeg -c copy -f segment`'s whole recording cost, same simulator, "
        "same run (`bench/spike_native_ingest.py`). Syscalls = `recv_into` + `epoll_wait` calls counted "
        "in the client.",
        "",
    ]
    rows = []
    for r in runs:
        if "error" in r:
            out += _error(r)
            continue
        s, f, n = r["spike"], r["ffmpeg"], r["cameras"]
        k = s["counters_in_window"]
        rows += [
            [f"{n} cams: CPU-seconds per camera-second", fmt(s["cpu_cores_per_camera"]), fmt(f["cpu_cores_per_camera"]), fmt(r["ratio_spike_over_ffmpeg"])],
            [f"{n} cams: syscalls per camera-second", fmt(s["per_camera_second"]["syscalls"]), "", ""],
            [f"{n} cams: CPU µs per RTP packet", fmt(s["us_per_packet"]), "", ""],
            [f"{n} cams: access units in window / expected", f"{k['access_units']} / {s['access_units_expected']}", "", ""],
            [f"{n} cams: simulator CPU (cores)", fmt(s["simulator_cpu_cores"]), fmt(f["simulator_cpu_cores"]), ""],
            [f"{n} cams: 1-min load average (spike: window start, end; ffmpeg: window end)", " – ".join(fmt(x) for x in s["load_average_1min_window_start_end"]), fmt(f["load_average_1min_window_end"]), ""],
        ]  # fmt: skip
        goals.append(
            [
                f"Native ingest spike CPU, {n} cams (receive+depacketise / ffmpeg recording)",
                f"≤ {r['goal_ratio']}×",
                fmt(r["ratio_spike_over_ffmpeg"]),
                verdict(r["ratio_spike_over_ffmpeg"], lambda x, g=r["goal_ratio"]: x <= g),
            ]
        )
    out += _table(["", "spike", "ffmpeg × N", "spike / ffmpeg"], rows)
    return out


def _failover(runs: list[dict], goals: list[list[str]]) -> list[str]:
    out = [
        "Issue #15: three `vmsd run` recorders and three etcd members on loopback; per kill, the recorder "
        "owning the most cameras gets `kill -9`; for each of its cameras, the time from the kill to the start "
        "of its first segment on the peer that took it over (lease_ttl + claim + RTSP connect + first "
        'keyframe). `failback = "auto"` brings the site back to about N cameras per recorder before the next '
        "kill (`bench/failover.py`). For comparison: Milestone documents ~5 s plus service start for a failover "
        "recording server, Nx Witness ~1 min.",
        "",
    ]
    rows = []
    for r in runs:
        if "error" in r:
            out += _error(r)
            continue
        source = r.get("source", "ffmpeg")
        # Runs differ by cameras per recorder, and at 64 also by RTSP client.
        n = f"{r['per_recorder']}" if source == "ffmpeg" else f"{r['per_recorder']} ({source})"
        victims = r["victim_cameras"] or [0]
        kills_done = len(r.get("per_kill", victims))
        rows += [
            [f"{n}/recorder: kill → first new segment on a peer, p50 (s)", fmt(r["first_segment_p50_s"])],
            [f"{n}/recorder: kill → first new segment on a peer, p90 (s)", fmt(r.get("first_segment_p90_s"))],
            [f"{n}/recorder: kill → first new segment on a peer, max (s)", fmt(r["first_segment_max_s"])],
            [f"{n}/recorder: kills × cameras measured", f"{kills_done} × {min(victims)}–{max(victims)} = {r['samples']}"],
            [f"{n}/recorder: lease_ttl (s)", fmt(r["lease_ttl_s"])],
        ]  # fmt: skip
        if r.get("claim_p50_s") is not None:
            rows += [
                [f"{n}/recorder: kill → a peer claims the camera in etcd, p50 / max (s)",
                 f"{fmt(r['claim_p50_s'])} / {fmt(r['claim_max_s'])}"],
                [f"{n}/recorder: claim → first segment (connect, keyframe), p50 / max (s)",
                 f"{fmt(r['claim_to_first_segment_p50_s'])} / {fmt(r['claim_to_first_segment_max_s'])}"],
            ]  # fmt: skip
        if r.get("source", "ffmpeg") != "ffmpeg" or "stream" in r:
            rows.append([f"{n}/recorder: RTSP client, stream", f"{r.get('source', 'ffmpeg')}, {r.get('stream', '')}"])
        if "load_average_at_start" in r:
            loads = [k["load_average"][0] for k in r.get("per_kill", [])]
            shown = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "—"
            rows.append([f"{n}/recorder: 1-min load average at the kills (2 cores)", shown])
        busy = [k["cpu_busy_before"] for k in r.get("per_kill", []) if "cpu_busy_before" in k]
        if busy:
            rows.append(
                [f"{n}/recorder: CPU busy in the steady state before the kills", f"{min(busy):.0%}–{max(busy):.0%}"]
            )
        if r.get("missed"):
            rows.append([f"{n}/recorder: cameras not on a peer within 120 s", fmt(r["missed"])])
        if r.get("stopped"):
            rows.append([f"{n}/recorder: stopped early", r["stopped"]])
        worst = r["first_segment_max_s"]
        median = f" (p50 {fmt(r['first_segment_p50_s'])} s)" if r.get("first_segment_p50_s") is not None else ""
        goals.append(
            [
                f"Failover, {n} cameras per recorder, worst camera",
                "≤ 15 s",
                f"{fmt(worst)} s{median}",
                verdict(worst, lambda x: x <= 15),
            ]
        )
        if r["per_recorder"] >= 64:
            goals.append(
                [
                    f"Failover, {n} cameras per recorder (goal)",
                    "≤ 10 s",
                    f"{fmt(worst)} s{median}",
                    verdict(worst, lambda x: x <= 10),
                ]
            )
    out += _table(["", "vmsd site"], rows)
    return out


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    goals: list[list[str]] = []
    body: list[str] = []
    renderers: dict[str, Callable[[Any, list[list[str]]], list[str]]] = {
        "recording": _recording,
        "capacity": _capacity,
        "search": _search,
        "relay": _relay,
        "browser_live": _browser_live,
        "export": _export,
        "crash": _crash,
        "startup": _startup,
        "ingest_spike": _ingest_spike,
        "failover": _failover,
    }
    for key, title in SECTIONS.items():
        body += [f"## {title}", ""]
        if key not in results:
            body += ["Not run in this invocation.", ""]
            continue
        body += renderers[key](results[key], goals)
        if f"{key}.png" in meta.get("plots", []):
            body += ["", f"![{title}]({key}.png)"]
        body.append("")
    head = ["# vmsd benchmark report", ""]
    if meta.get("smoke"):
        head += [
            "> **SMOKE RUN** — tiny parameters (a couple of cameras, seconds per scenario) to check that the "
            "suite works. These figures are not benchmark results; run `make bench` for those.",
            "",
        ]
    head += [
        f"Generated by `{meta['command']}` on {meta['started_utc']} ({meta['cpus']} CPUs, {meta['host']}), "
        f"{meta['elapsed_s']:.0f} s. Every figure was measured in this run; ratios are against the peer measured "
        "in the same run on the same machine (absolute figures are not comparable between runs on these "
        "shared machines). Raw figures: `report.json`.",
        "",
        "## Goals",
        "",
        *_table(["goal", "target", "measured", "status"], goals),
        "",
    ]
    return "\n".join(head + body)


# -- plots ----------------------------------------------------------------------------------------


def plot(results: dict[str, Any], out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        written.append(name)

    runs = [r for r in results.get("recording", []) if "error" not in r]
    if runs:
        n = [r["cameras"] for r in runs]
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for system in ("vmsd", "ffmpeg"):
            a.plot(n, [100 * r[system]["cpu_cores_per_camera"] for r in runs], "o-", label=system)
            b.plot(n, [r[system]["rss_mib_per_camera"] for r in runs], "o-", label=system)
        a.set(xlabel="cameras", ylabel="% of a core per camera", title="Recording CPU")
        b.set(xlabel="cameras", ylabel="MiB per camera", title="Recording RSS")
        a.legend()
        b.legend()
        save(fig, "recording.png")
    cap = results.get("capacity")
    if cap and "error" not in cap and cap["runs"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        for system in ("vmsd", "ffmpeg"):
            pts = [x for x in cap["runs"] if x["system"] == system and x["cpu_cores"] is not None]
            ax.plot([x["cameras"] for x in pts], [x["cpu_cores"] for x in pts], "o-", label=f"{system} cores")
            bad = [x for x in pts if not x["passed"]]
            ax.plot([x["cameras"] for x in bad], [x["cpu_cores"] for x in bad], "rx", markersize=12)
        ax.set(xlabel="cameras", ylabel="cores", title="Capacity ladder (x = step failed)")
        ax.legend()
        save(fig, "capacity.png")
    search = results.get("search")
    if search and "error" not in search:
        labels = [f"{label} {q}" for label in search["vmsd"] for q in ("p50", "p99")]
        xs = range(len(labels))
        fig, ax = plt.subplots(figsize=(6, 4))
        for offset, (system, figs) in zip(
            (-0.2, 0.2), (("vmsd gRPC", search["vmsd"]), ("SQLite floor", search["sqlite"])), strict=True
        ):
            vals = [figs[label][f"{q}_ms"] for label in search["vmsd"] for q in ("p50", "p99")]
            ax.bar([x + offset for x in xs], vals, width=0.4, label=system)
        ax.set_xticks(list(xs), labels)
        ax.set(ylabel="ms", title="Search latency", yscale="log")
        ax.legend()
        save(fig, "search.png")
    relay = results.get("relay")
    if relay and "error" not in relay and relay["viewers"]:
        counts = [int(c) for c in relay["viewers"]]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        for system in ("vmsd", "gstreamer"):
            figs = [relay["viewers"][str(c)][system] for c in counts]
            axes[0].plot(counts, [100 * (f["cores_per_viewer"] or 0) for f in figs], "o-", label=system)
            axes[1].plot(counts, [f["latency_p99_ms"] for f in figs], "o-", label=system)
            axes[2].plot(counts, [f["first_frame_p50_ms"] for f in figs], "o-", label=system)
        axes[0].set(xlabel="viewers", ylabel="% of a core per viewer", title="Relay CPU")
        axes[1].set(xlabel="viewers", ylabel="ms", title="Added latency p99")
        axes[2].set(xlabel="viewers", ylabel="ms", title="Time to first frame p50")
        for ax in axes:
            ax.legend()
        save(fig, "relay.png")
    live = results.get("browser_live")
    if live and "error" not in live and live["viewers"]:
        counts = [int(c) for c in live["viewers"]]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for system in ("websocket", "grpc", "gstreamer"):
            figs = [live["viewers"][str(c)][system] for c in counts]
            axes[0].plot(counts, [100 * (f["cores_per_viewer"] or 0) for f in figs], "o-", label=system)
            if system != "gstreamer":
                axes[1].plot(counts, [f["send_delay"]["p99_ms"] for f in figs], "o-", label=f"{system} p99")
        axes[1].axhline(50, color="grey", linestyle="--", label="goal")
        axes[0].set(xlabel="viewers", ylabel="% of a core per viewer", title="Live CPU per viewer", xscale="log")
        axes[1].set(xlabel="viewers", ylabel="ms", title="Hub arrival → send, p99", xscale="log")
        for ax in axes:
            ax.legend()
        save(fig, "browser_live.png")
    export = results.get("export")
    if export and "error" not in export:
        names = list(export["results"])
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.barh(names, [export["results"][n]["wall_s"] for n in names])
        ax.set(xlabel="wall seconds", title=f"Export of {export['footage_s']:.0f} s of footage")
        save(fig, "export.png")
    crash = results.get("crash")
    if crash and "error" not in crash:
        fig, ax = plt.subplots(figsize=(8, 4))
        for system in ("vmsd", "ffmpeg"):
            if system in crash:
                lost = crash[system]["lost_s"]
                ax.plot(range(1, len(lost) + 1), lost, "o", label=system)
        ax.axhline(2, color="grey", linestyle="--", label="goal (one GOP)")
        ax.set(xlabel="crash (camera)", ylabel="seconds lost", title="Footage lost per kill -9")
        ax.legend()
        save(fig, "crash.png")
    start = results.get("startup")
    if start and "error" not in start and start["runs"]:
        n = [x["cameras"] for x in start["runs"]]
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (
            ("port_open_s", "gRPC port open"),
            ("ready_s", "READY=1"),
            ("all_cameras_recording_s", "every camera recording"),
        ):
            ax.plot(n, [x[key] for x in start["runs"]], "o-", label=label)
        ax.set(xlabel="cameras", ylabel="seconds after spawn", title="Start-up on a loaded box")
        ax.legend()
        save(fig, "startup.png")
    spike = [r for r in results.get("ingest_spike", []) if "error" not in r]
    if spike:
        n = [r["cameras"] for r in spike]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(n, [100 * r["spike"]["cpu_cores_per_camera"] for r in spike], "o-", label="spike (receive only)")
        ax.plot(n, [100 * r["ffmpeg"]["cpu_cores_per_camera"] for r in spike], "o-", label="ffmpeg (whole recording)")
        ax.set(xlabel="cameras", ylabel="% of a core per camera", title="Native ingest spike")
        ax.legend()
        save(fig, "ingest_spike.png")
    fail = [r for r in results.get("failover", []) if "error" not in r]
    if fail:
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in fail:
            ax.plot(
                range(1, r["samples"] + 1),
                r["first_segment_s"],
                "o",
                label=f"{r['per_recorder']} per recorder, {r.get('source', 'ffmpeg')}",
            )
        ax.axhline(15, color="grey", linestyle="--", label="bound (15 s)")
        ax.axhline(10, color="grey", linestyle=":", label="goal at 64 per recorder (10 s)")
        ax.set(xlabel="camera taken over (sorted)", ylabel="seconds after kill -9", title="Site failover")
        ax.legend()
        save(fig, "failover.png")
    return written
