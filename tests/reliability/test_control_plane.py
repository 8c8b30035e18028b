"""Fault family 6: the control plane under hostile input, against the real daemon recording one
camera from the simulator (a subprocess: the sync gRPC clients here never share its event loop).

(a) hypothesis-built, well-formed but malformed requests to EVERY method of every service in
    `vmsd.v1` (strategies derived from the request descriptors, strings from tests/rpc/test_fuzz.py),
    as every role and without a token: 500 (10,000 with VMSD_SOAK=1); never INTERNAL/UNKNOWN nor
    DEADLINE_EXCEEDED; no token is UNAUTHENTICATED; a role without the RPC's permission is refused;
    and bytes that are not a request (random, truncated, bad wire types) to every method, unary and
    streaming, as every role: INVALID_ARGUMENT naming the method;
(b) a request over 4 MiB gets RESOURCE_EXHAUSTED;
(c) 300 channels on their own connections calling at once, plus 100 raw TCP connections that send
    garbage and hang: the daemon keeps answering;
(d) 50 relay clients of the recorded camera, 10 of which never read: the 40 keep receiving, the 10
    end with RESOURCE_EXHAUSTED, recording loses nothing (no new gap; frames = 25 fps × duration);
(e) descriptors and RSS of the daemon back near the baseline afterwards.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import itertools
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import Results, S, count, gaps, rows
from tests.rpc.test_fuzz import REFUSED, ints64, may_call, texts, undecodable_payloads
from tests.support.daemon import DaemonProcess, write_config
from tests.support.rpc import ROLES, method_path, service_methods
from tests.support.simulator import CameraSimulator

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
ADMIN = "control-plane-admin-token"
RELAY_TOKENS = [f"control-plane-relay-{i}" for i in range(5)]  # 16 relays per principal at most
ROLE_TOKENS = {role: f"control-plane-{role}-token" for role in ROLES if role != "admin"} | {"admin": ADMIN}
# A fuzzed call that runs into its deadline is a failure (a request must be answered, not left to
# hang): streams are read for at most a few messages, and this is far longer than any answer takes.
DEADLINE_S = 30
FOLLOW_S = 1.0
BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry or depth > 2:
            return None
        return _message(field.message_type, depth + 1)
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(texts, st.just("ctl"))
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-5, 1000))
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.integers(-(2**31), 2**31 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    return ints64


def _message(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(desc)
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        strategy = _scalar(field, depth)
        if strategy is None:
            continue
        optional[field.name] = st.lists(strategy, max_size=3) if field.is_repeated else strategy

    def build(values: dict[str, Any]) -> Any:
        if "enabled" in values:
            values["enabled"] = False  # a fuzzed camera never goes looking for a random host
        return cls(**values)

    return st.fixed_dictionaries({}, optional=optional).map(build)  # type: ignore[arg-type]


def _tokens_config() -> str:
    # Fuzzed RunFunctionCheck calls each watch the cameras for [health] observe: keep that short.
    lines = ["[health]", "times = []", 'observe = "1s"']
    named = [(f"cp-{role}", token, role) for role, token in ROLE_TOKENS.items()]
    for name, token, role in named + [(t, t, "operator") for t in RELAY_TOKENS]:
        lines += [
            "[[auth.tokens]]",
            f'name = "{name}"',
            f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"',
            f'role = "{role}"',
        ]
    return "\n".join(lines)


def _proc(pid: int) -> tuple[int, int]:
    """(open descriptors, RSS in KiB) of a process."""
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS")
    )
    return len(os.listdir(f"/proc/{pid}/fd")), rss


@pytest.fixture(scope="module")
def daemon(
    relsim: CameraSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DaemonProcess, int, Path]]:
    workdir = tmp_path_factory.mktemp("control-plane")
    root = workdir / "root"
    config = write_config(
        workdir / "vmsd.toml", root, {"ctl": relsim.url("ctl")}, segment_duration="2s", extra=_tokens_config()
    )
    proc = DaemonProcess(config, workdir / "vmsd.log").start()
    try:
        proc.wait_for_log('"state": "recording"', timeout=60)
        port = next(json.loads(line)["port"] for line in proc.log().splitlines() if '"grpc_listening"' in line)
        yield proc, int(port), root
        assert proc.alive(), proc.log()
        proc.terminate()
    finally:
        if proc.alive():
            proc.kill9()


def _call(
    channel: grpc.Channel, method: MethodDescriptor, request: Any, token: str | None = ADMIN
) -> tuple[grpc.StatusCode, str]:
    """(status, details) of one call; `request` is a message, or bytes sent as they are."""
    path = method_path(method)
    md = [("authorization", f"Bearer {token}")] if token else []
    serializer = None if isinstance(request, bytes) else (lambda m: m.SerializeToString())
    # A following WatchEvents stays open until the client leaves, by design: read it for a moment,
    # and its deadline is its end (any other call must be answered within DEADLINE_S).
    following = not isinstance(request, bytes) and getattr(request, "follow", False) is True
    timeout_s = FOLLOW_S if following else DEADLINE_S
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=serializer)(request, metadata=md, timeout=timeout_s)
            for i, _ in enumerate(stream):
                if i >= 2:
                    stream.cancel()
                    break
        else:
            channel.unary_unary(path, request_serializer=serializer)(request, metadata=md, timeout=DEADLINE_S)
    except grpc.RpcError as error:
        if following and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return grpc.StatusCode.OK, ""  # open as asked
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def test_control_plane_under_hostile_input(daemon: tuple[DaemonProcess, int, Path], results: Results) -> None:
    proc, port, root = daemon
    assert proc.proc is not None
    pid, target = proc.proc.pid, f"127.0.0.1:{port}"
    methods = service_methods()
    results["methods"] = len(methods)
    with grpc.insecure_channel(target) as channel:
        _call(channel, methods[0], methods[0].input_type._concrete_class())
    time.sleep(2)
    base_fd, base_rss = _proc(pid)
    results["baseline_fds"], results["baseline_rss_kib"] = base_fd, base_rss
    window_start_ns = time.time_ns()
    gaps_before = len(gaps(root, "ctl"))

    # (a) fuzzed requests to every method, as every role and without a token
    codes: Counter[str] = Counter()
    bad: list[str] = []
    examples = count(500, 10_000)
    # Admin gets furthest into the code: weighted (every role × every RPC is tests/rpc's matrix).
    callers: list[str | None] = [*ROLE_TOKENS, None, "admin", "admin", "admin"]
    seconds: Counter[str] = Counter()  # time spent per method
    with grpc.insecure_channel(target) as channel:

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(
            st.sampled_from(methods).flatmap(lambda m: st.tuples(st.just(m), _message(m.input_type))),
            st.sampled_from(callers),
        )
        def fuzz(case: tuple[MethodDescriptor, Any], role: str | None) -> None:
            method, request = case
            began_ns = time.monotonic_ns()
            code, details = _call(channel, method, request, ROLE_TOKENS[role] if role else None)
            seconds[method.name] += (time.monotonic_ns() - began_ns) / S
            codes[code.name] += 1
            what = f"{method.full_name} as {role or 'no token'}: {code.name} {details[:120]!r} for {request!r:.200}"
            if role is None:
                allowed = {grpc.StatusCode.UNAUTHENTICATED}
            elif not may_call(role, method.name):
                allowed = REFUSED
            else:
                allowed = set(grpc.StatusCode) - BAD
            if code not in allowed:
                bad.append(what)

        began = time.monotonic()
        fuzz()
        results["fuzz_seconds"] = round(time.monotonic() - began, 1)
    results["fuzz_requests"] = sum(codes.values())
    results["fuzz_codes"] = dict(codes)
    results["fuzz_slowest_methods_s"] = {name: round(t, 1) for name, t in seconds.most_common(3)}
    assert not bad, bad[:5]

    # (a2) bytes that are not a request, to every method (unary and streaming), the roles taking
    # turns (each such request is an audit write; tests/rpc/test_fuzz.py tries every combination)
    raw_codes: Counter[str] = Counter()
    raw_began = time.monotonic()
    turns = itertools.cycle(ROLE_TOKENS)
    with grpc.insecure_channel(target) as channel:
        for method in methods:
            for kind, payload in undecodable_payloads(method).items():
                role = next(turns)
                code, details = _call(channel, method, payload, ROLE_TOKENS[role])
                raw_codes[code.name] += 1
                if code != grpc.StatusCode.INVALID_ARGUMENT or method_path(method) not in details:
                    bad.append(f"{method.full_name} {kind} as {role}: {code.name} {details[:120]!r}")
    results["undecodable_seconds"] = round(time.monotonic() - raw_began, 1)
    results["undecodable_requests"] = sum(raw_codes.values())
    results["undecodable_codes"] = dict(raw_codes)
    assert not bad, bad[:5]

    # (b) an oversized message
    big_method = next(m for m in methods if any(f.type == FieldDescriptor.TYPE_STRING for f in m.input_type.fields))
    text_field = next(f.name for f in big_method.input_type.fields if f.type == FieldDescriptor.TYPE_STRING)
    big = big_method.input_type._concrete_class(**{text_field: "x" * (5 * 1024 * 1024)})
    results["oversized_method"] = big_method.full_name
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        results["oversized_status"] = _call(channel, big_method, big)[0].name
    assert results.figures["oversized_status"] == "RESOURCE_EXHAUSTED"

    # (c) a flood of connections: 300 channels calling at once, 100 raw sockets sending garbage
    garbage = []
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(os.urandom(512))
        garbage.append(s)
    cheap = (
        next(m for m in methods if not m.server_streaming and m.name in ("ListCameras", "ListHolds"))
        if any(m.name in ("ListCameras", "ListHolds") for m in methods)
        else methods[0]
    )

    def one_channel(_: int) -> str:
        with grpc.insecure_channel(target, options=OWN_CONNECTION) as ch:
            return _call(ch, cheap, cheap.input_type._concrete_class())[0].name

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=300) as pool:
        flood_codes = Counter(pool.map(one_channel, range(300)))
    results["flood_seconds"] = round(time.monotonic() - began, 1)
    results["flood_codes"] = dict(flood_codes)
    with grpc.insecure_channel(target) as channel:
        t0 = time.monotonic()
        results["answer_during_garbage"] = _call(channel, cheap, cheap.input_type._concrete_class())[0].name
        results["answer_during_garbage_ms"] = round((time.monotonic() - t0) * 1000, 1)
    for s in garbage:
        s.close()
    assert not set(flood_codes) & {c.name for c in BAD}, flood_codes
    assert flood_codes.get("OK", 0) >= 290, flood_codes
    assert results.figures["answer_during_garbage"] == "OK"

    # (d) 50 relay clients, 10 never read
    from vmsd.v1 import live_pb2, live_pb2_grpc

    received = [0] * 50
    ends: dict[int, str] = {}
    relay_s = 16

    def relay(i: int) -> None:
        stalled = i % 5 == 0
        options = OWN_CONNECTION + ([("grpc.http2.bdp_probe", 0)] if stalled else [])
        with grpc.insecure_channel(target, options=options) as ch:
            stub = live_pb2_grpc.LiveServiceStub(ch)
            token = RELAY_TOKENS[i % len(RELAY_TOKENS)]
            stream = stub.Relay(
                live_pb2.RelayRequest(camera_id="ctl"),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=relay_s + 10,
            )
            try:
                if stalled:
                    time.sleep(relay_s)  # never read while the others do
                for _ in stream:
                    received[i] += 1
                    if not stalled and time.monotonic() > deadline:
                        stream.cancel()
                        break
                ends[i] = "end"
            except grpc.RpcError as error:
                ends[i] = error.code().name

    deadline = time.monotonic() + relay_s
    threads = [threading.Thread(target=relay, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    readers = [received[i] for i in range(50) if i % 5]
    stalled_ends = Counter(ends.get(i, "hung") for i in range(50) if i % 5 == 0)
    results["relay_reader_packets_min"] = min(readers)
    results["relay_reader_packets_max"] = max(readers)
    results["relay_reader_ends"] = dict(Counter(ends.get(i, "hung") for i in range(50) if i % 5))
    results["relay_stalled_ends"] = dict(stalled_ends)
    window_end_ns = time.time_ns()
    assert min(readers) > 25 * (relay_s - 4), readers  # every reader got (nearly) all frames
    assert stalled_ends.get("RESOURCE_EXHAUSTED", 0) == 10, stalled_ends

    # recording lost nothing in the window
    time.sleep(3)
    segs = [
        r
        for r in rows(root, "SELECT * FROM segments WHERE camera_id='ctl' AND state='complete' ORDER BY start_ns")
        if r["start_ns"] >= window_start_ns and r["end_ns"] <= window_end_ns
    ]
    frames = sum(r["frames"] for r in segs)
    covered_s = sum(r["end_ns"] - r["start_ns"] for r in segs) / S
    results["window_segments"] = len(segs)
    results["window_frames"] = frames
    results["window_expected_frames"] = round(25 * covered_s)
    results["new_gaps"] = len(gaps(root, "ctl")) - gaps_before
    contiguous = all(b["start_ns"] == a["end_ns"] for a, b in itertools.pairwise(segs))
    results["window_contiguous"] = contiguous
    assert results.figures["new_gaps"] == 0
    assert contiguous and abs(frames - 25 * covered_s) <= 0.01 * 25 * covered_s, (frames, covered_s)

    # (e) back to baseline
    time.sleep(5)
    fds, rss = _proc(pid)
    results["after_fds"], results["after_rss_kib"] = fds, rss
    assert proc.alive(), proc.log()
    assert fds <= base_fd + 10, (base_fd, fds)
    assert rss <= base_rss + 100 * 1024, (base_rss, rss)
