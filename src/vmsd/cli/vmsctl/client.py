"""The connection to the daemon: channel (TLS or not), token, stubs, deadlines, paged calls."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from vmsd.cli.vmsctl.errors import UsageError
from vmsd.v1 import (
    audit_pb2_grpc,
    cameras_pb2_grpc,
    health_pb2_grpc,
    holds_pb2_grpc,
    recordings_pb2_grpc,
    report_pb2_grpc,
    site_pb2_grpc,
)


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        server = args.server or os.environ.get("VMSD_SERVER") or "127.0.0.1:50051"
        self.token = _token(args)
        if args.tls_ca or args.tls_cert or args.tls_key:
            if bool(args.tls_cert) != bool(args.tls_key):
                raise UsageError("--tls-cert and --tls-key go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(args.tls_ca) if args.tls_ca else None,
                private_key=_read(args.tls_key) if args.tls_key else None,
                certificate_chain=_read(args.tls_cert) if args.tls_cert else None,
            )
            self.channel = grpc.secure_channel(server, credentials)
        else:
            self.channel = grpc.insecure_channel(server)
        self.timeout = args.timeout
        # The generated stubs are untyped.
        self.cameras = cameras_pb2_grpc.CameraServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.recordings = recordings_pb2_grpc.RecordingServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.audit = audit_pb2_grpc.AuditServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.holds = holds_pb2_grpc.HoldServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.retention = holds_pb2_grpc.RetentionServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.site = site_pb2_grpc.SiteServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.checks = health_pb2_grpc.FunctionCheckServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.reports = report_pb2_grpc.ReportServiceStub(self.channel)  # type: ignore[no-untyped-call]

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=self.timeout)


def _token(args: argparse.Namespace) -> str:
    """--token-file, else --token, else $VMSD_TOKEN (a command line is visible to every user)."""
    if args.token_file:
        path = args.token_file
        text = _read(path).decode("utf-8", errors="replace").strip()
        if not text:
            raise UsageError(f"token file {path} is empty")
        if os.stat(path).st_mode & 0o077:
            print(f"vmsctl: warning: token file {path} is readable by other users (chmod 600 it)", file=sys.stderr)
        return text
    return str(args.token or os.environ.get("VMSD_TOKEN") or "").strip()


def pages(client: Client, method: Callable[..., Any], request: Any) -> Iterator[Any]:
    """Every reply of a paged list call: the server keeps each under its message size cap."""
    while True:
        page = client.call(method, request)
        yield page
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
