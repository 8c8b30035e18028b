"""The server's connection limits from [grpc] reach grpc core: an idle connection is closed after
max_connection_idle, and a connection's streams end max_connection_age + grace after it opened."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.rpc import RunningDaemon, make_config

OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def test_an_idle_connection_is_closed_after_max_connection_idle(fresh_root: Path) -> None:
    running = RunningDaemon(make_config(fresh_root, grpc={"max_connection_idle": "1s"}))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=OWN_CONNECTION) as channel:
            states: list[grpc.ChannelConnectivity] = []
            idle_again = threading.Event()

            def seen(state: grpc.ChannelConnectivity) -> None:
                states.append(state)
                if grpc.ChannelConnectivity.READY in states and state is grpc.ChannelConnectivity.IDLE:
                    idle_again.set()

            channel.subscribe(seen)
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            # The client's own idle timeout is 30 minutes: only the server can close it this soon.
            assert idle_again.wait(15), states
            channel.unsubscribe(seen)
    finally:
        running.stop()


def test_a_stream_ends_max_connection_age_plus_grace_after_its_connection_opened(fresh_root: Path) -> None:
    running = RunningDaemon(
        make_config(fresh_root, grpc={"max_connection_age": "1s", "max_connection_age_grace": "2s"})
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}", options=OWN_CONNECTION) as channel:
            began = time.monotonic()
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
            code = grpc.StatusCode.OK
            try:
                for _ in watch:  # SERVING, then nothing: the stream would run until the deadline
                    pass
            except grpc.RpcError as error:
                code = error.code()
            lasted = time.monotonic() - began
        assert code is grpc.StatusCode.UNAVAILABLE, code
        assert lasted < 20, lasted  # well before the call's 30 s deadline
    finally:
        running.stop()
