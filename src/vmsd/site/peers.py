"""PeerClient: this recorder's gRPC calls to the other recorders of its site.

One grpc.aio channel per peer address, opened on first use and kept (peers are few and calls
frequent); every call carries the site token and the headers of the principal it is made for
(built by vmsd.services.forwarding), and has a deadline. A peer that does not answer in time,
or cannot be reached, is an explicit UNAVAILABLE `VmsdError` naming the recorder, its address
and why; a refusal keeps the peer's kind and message, prefixed with the recorder's name.
Channels are TLS once `accept_credentials` was given the site's (`load_peer_credentials`: the CA
of [site] peer_tls, this recorder's certificate as the client's); without, plaintext, and only
to loopback addresses unless [site] insecure (the site token would cross the network in clear).
Blocking I/O: none (the token and certificate files are read by `load_site_token` and
`load_peer_credentials`, in a thread by the caller).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import grpc

from vmsd.audit import AuditFilters, AuditRecord
from vmsd.config import PeerTlsConfig, TlsConfig, is_loopback
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.site_parts import PartHeader, PartItem, PartSegment
from vmsd.ingest.hub import AUDIO, VIDEO, Missed, RelayPacket, StreamConfig
from vmsd.recordings.parts import ReviewedSegment
from vmsd.recordings.search import Gap, SearchResult, Span
from vmsd.units import NS_PER_S
from vmsd.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    export_pb2,
    export_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    recordings_pb2,
    recordings_pb2_grpc,
)

__all__ = ["DEFAULT_PEER_TIMEOUT_NS", "PeerClient", "load_peer_credentials", "load_site_token"]

# A peer on the same site answers a search in milliseconds; one that takes seconds is as good as
# absent for an operator waiting at a console, and its part is reported unavailable instead.
DEFAULT_PEER_TIMEOUT_NS = 3 * NS_PER_S
_PAGE_SIZE = 10_000
# A peer sending an export's footage: each message (≤ 1 MiB) must come within this, so a peer
# that stops mid-way fails the export instead of holding it for ever.
_PART_MESSAGE_TIMEOUT_S = 30.0
# Error kinds a peer's status maps back to (same names as ErrorKind).
_KINDS = {kind.value: kind for kind in ErrorKind}


def load_site_token(path: Path) -> str:
    """The site token in `path` ([site] token_file), stripped (blocking). FAILED_PRECONDITION
    naming the file when it cannot be read or is empty; the token itself is never in a message."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise VmsdError(
            ErrorKind.FAILED_PRECONDITION, f"[site] token_file {str(path)!r}: cannot be read ({error})"
        ) from None
    if not token:
        raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"[site] token_file {str(path)!r} is empty")
    return token


def load_peer_credentials(peer_tls: PeerTlsConfig, grpc_tls: TlsConfig) -> grpc.ChannelCredentials:
    """TLS credentials for calls to peers (blocking: reads the files): trust the CA in [site]
    peer_tls.ca, present [site] peer_tls.cert/key, else this recorder's own [grpc.tls] cert/key
    (mutual TLS when the peers' client_ca trusts it). FAILED_PRECONDITION naming the key when a
    file cannot be read."""
    cert, cert_key = (peer_tls.cert, "site.peer_tls.cert") if peer_tls.cert else (grpc_tls.cert, "grpc.tls.cert")
    key, key_key = (peer_tls.key, "site.peer_tls.key") if peer_tls.key else (grpc_tls.key, "grpc.tls.key")
    files = {}
    for name, path in (("site.peer_tls.ca", peer_tls.ca), (cert_key, cert), (key_key, key)):
        try:
            files[name] = path.read_bytes()
        except OSError as error:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"{name} {str(path)!r}: cannot be read ({error})") from None
    return grpc.ssl_channel_credentials(
        root_certificates=files["site.peer_tls.ca"], private_key=files[key_key], certificate_chain=files[cert_key]
    )


class PeerClient:
    """Calls to peer recorders. No I/O in the constructor; `aclose()` closes every channel.
    `insecure`: plaintext to peers off loopback is allowed ([site] insecure)."""

    def __init__(
        self, site_token: str | None = None, *, timeout_ns: int = DEFAULT_PEER_TIMEOUT_NS, insecure: bool = False
    ) -> None:
        self._authorization = f"Bearer {site_token}" if site_token else None
        self._timeout_s = timeout_ns / NS_PER_S
        # TLS to the peers' [grpc] tls (accept_credentials); None: plaintext.
        self._credentials: grpc.ChannelCredentials | None = None
        self._insecure = insecure
        self._channels: dict[str, grpc.aio.Channel] = {}

    def accept_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Call peers over TLS from now on (the daemon loads [site] peer_tls at start)."""
        self._credentials = credentials

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            if self._credentials is not None:
                channel = grpc.aio.secure_channel(address, self._credentials)
            elif self._insecure or is_loopback(address.rpartition(":")[0].strip("[]")):
                channel = grpc.aio.insecure_channel(address)
            else:
                # The config refuses a non-loopback advertise without TLS; a peer advertising one
                # to a recorder without TLS is refused here, before the site token is sent.
                raise VmsdError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"peer address {address} is not a loopback address and this recorder has no [site] peer_tls: "
                    "it calls peers on the network over TLS only (or in plaintext with [site] insecure = true)",
                )
            self._channels[address] = channel
        return channel

    def accept_site_token(self, site_token: str) -> None:
        """Present `site_token` from now on (the daemon reads [site] token_file at start)."""
        self._authorization = f"Bearer {site_token}"

    def _metadata(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        if self._authorization is None:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                "this recorder has no site token ([site] token_file): it cannot ask peers",
            )
        return [("authorization", self._authorization), *headers]

    async def search(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
    ) -> SearchResult:
        """The peer's own spans (each naming the recorder that holds it) and gaps of the camera in
        [start_ns, end_ns), every page; raises VmsdError (see the module docstring)."""
        stub = recordings_pb2_grpc.RecordingServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        request = recordings_pb2.SearchRequest(
            camera_id=camera_id, range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), page_size=_PAGE_SIZE
        )
        spans: list[Span] = []
        gaps: list[Gap] = []
        while True:
            reply = await self._call(recorder_id, address, stub.Search, request, headers)
            spans += [_span(s, recorder_id) for s in reply.spans]
            gaps += [Gap(g.range.start_ns, g.range.end_ns, g.reason, g.detail, g.open) for g in reply.gaps]
            if not reply.next_page_token:
                return SearchResult(spans, gaps)
            request.page_token = reply.next_page_token

    async def query_audit(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        filters: AuditFilters,
        page_size: int,
        before_seq: int,
    ) -> tuple[list[tuple[AuditRecord, bool]], bool]:
        """The peer's own newest matching records before `before_seq` (0: from the newest),
        oldest first, each with its `redacted` flag, and whether older ones remain (its own
        trail only: a forwarded call is never fanned out again)."""
        stub = audit_pb2_grpc.AuditServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        request = audit_pb2.QueryAuditRequest(
            since_ns=filters.since_ns,
            until_ns=filters.until_ns,
            camera_id=filters.camera_id,
            principal=filters.principal,
            action=filters.action,
            outcome=filters.outcome,
            page_size=page_size,
            page_token=str(before_seq) if before_seq else "",
        )
        reply = await self._call(recorder_id, address, stub.QueryAudit, request, headers)
        return [(_audit_record(r), r.redacted) for r in reply.records], bool(reply.truncated)

    async def review_segments(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
        reason: str,
    ) -> tuple[str, list[ReviewedSegment]]:
        """The peer's own review of the range as its stored segments (gRPC ReviewSegments, for
        the forwarded principal, with the reason: audited there): its review id (for
        `read_segment`) and its complete segments, in time order."""
        stub = recordings_pb2_grpc.RecordingServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        request = recordings_pb2.ReviewSegmentsRequest(
            camera_id=camera_id, range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), reason=reason
        )
        reply = await self._call(recorder_id, address, stub.ReviewSegments, request, headers)
        segments = [
            ReviewedSegment(
                s.range.start_ns,
                s.range.end_ns,
                s.bytes,
                s.sha256,
                s.video_codec,
                s.width,
                s.height,
                s.recorder or recorder_id,
            )
            for s in reply.segments
        ]
        return reply.review_id, segments

    async def read_segment(
        self, recorder_id: str, address: str, headers: Sequence[tuple[str, str]], review_id: str, index: int
    ) -> AsyncGenerator[bytes, None]:
        """Segment `index` of the peer's review `review_id` (gRPC ReadSegment, for the forwarded
        principal who made it): the file's bytes as they come. The timeout applies to the first
        chunk; the call ends when the generator is closed."""
        stub = recordings_pb2_grpc.RecordingServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        call = stub.ReadSegment(
            recordings_pb2.ReadSegmentRequest(review_id=review_id, index=index), metadata=self._metadata(headers)
        )
        first = await self._first(recorder_id, address, call)
        return self._segment_data(recorder_id, address, call, first)

    async def _segment_data(self, recorder_id: str, address: str, call: Any, first: Any) -> AsyncGenerator[bytes, None]:
        message = first
        try:
            while message is not grpc.aio.EOF:
                yield message.data
                message = await call.read()
        except grpc.aio.AioRpcError as error:
            raise _peer_error(recorder_id, address, error, self._timeout_s) from None
        finally:
            call.cancel()

    async def _first(self, recorder_id: str, address: str, call: Any) -> Any:
        """The first message of a streamed answer, within the timeout (the rest may take long)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call.read()
        except TimeoutError:
            call.cancel()
            raise VmsdError(
                ErrorKind.UNAVAILABLE, f"recorder {recorder_id} ({address}) did not answer within {self._timeout_s:g} s"
            ) from None
        except grpc.aio.AioRpcError as error:
            raise _peer_error(recorder_id, address, error, self._timeout_s) from None

    async def relay(
        self, recorder_id: str, address: str, headers: Sequence[tuple[str, str]], camera_id: str, duration_ns: int
    ) -> AsyncGenerator[StreamConfig | RelayPacket | Missed, None]:
        """The peer's live relay of the camera (gRPC Relay, for the forwarded principal): the
        stream configuration, packets and missed-frame notices as they come. The timeout applies
        to the first message; the call ends when the generator is closed."""
        stub = live_pb2_grpc.LiveServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        call = stub.Relay(
            live_pb2.RelayRequest(camera_id=camera_id, duration_ns=duration_ns), metadata=self._metadata(headers)
        )
        first = await self._first(recorder_id, address, call)
        return self._relay_items(recorder_id, address, call, first)

    async def fetch_segments(
        self,
        recorder_id: str,
        address: str,
        headers: Sequence[tuple[str, str]],
        camera_id: str,
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        export_id: str,
    ) -> AsyncGenerator[PartItem, None]:
        """The peer's part of an export (gRPC FetchSegments, for the forwarded principal): its
        header once it has come (the timeout applies to it), then each segment's row and bytes
        as they come (each message within 30 s). The call ends when the generator is closed."""
        stub = export_pb2_grpc.ExportServiceStub(self._channel(address))  # type: ignore[no-untyped-call]
        request = export_pb2.FetchSegmentsRequest(
            camera_id=camera_id,
            range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns),
            case_ref=case_ref,
            reason=reason,
            export_id=export_id,
        )
        call = stub.FetchSegments(request, metadata=self._metadata(headers))
        first = await self._first(recorder_id, address, call)
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "part":
            call.cancel()
            raise VmsdError(ErrorKind.DATA_LOSS, f"recorder {recorder_id} ({address}) sent no part of the export")
        return self._part_items(recorder_id, address, call, first)

    async def _part_items(
        self, recorder_id: str, address: str, call: Any, first: Any
    ) -> AsyncGenerator[PartItem, None]:
        message = first
        try:
            while message is not grpc.aio.EOF:
                kind = message.WhichOneof("kind")
                if kind == "part":
                    yield _part_header(message.part, recorder_id)
                elif kind == "segment":
                    yield _part_segment(message.segment)
                elif kind == "data":
                    yield message.data
                async with asyncio.timeout(_PART_MESSAGE_TIMEOUT_S):
                    message = await call.read()
        except TimeoutError:
            raise VmsdError(
                ErrorKind.UNAVAILABLE,
                f"recorder {recorder_id} ({address}) stopped sending its footage "
                f"(nothing for {_PART_MESSAGE_TIMEOUT_S:g} s)",
            ) from None
        except grpc.aio.AioRpcError as error:
            raise _peer_error(recorder_id, address, error, self._timeout_s) from None
        finally:
            call.cancel()

    async def _relay_items(
        self, recorder_id: str, address: str, call: Any, first: Any
    ) -> AsyncGenerator[StreamConfig | RelayPacket | Missed, None]:
        message = first
        try:
            while message is not grpc.aio.EOF:
                kind = message.WhichOneof("kind")
                if kind == "config":
                    c = message.config
                    yield StreamConfig(
                        c.generation, c.video_codec, c.width, c.height, c.video_extradata, c.audio_codec,
                        c.audio_sample_rate, c.audio_channels, c.audio_extradata, c.init_segment,
                    )  # fmt: skip
                elif kind == "packet":
                    p = message.packet
                    media = VIDEO if p.kind == live_pb2.MediaPacket.KIND_VIDEO else AUDIO
                    yield RelayPacket(media, p.data, p.pts_ns, p.dts_ns, p.keyframe, p.generation, time.monotonic_ns())
                elif kind == "notice":
                    yield Missed(message.notice.missed_frames)
                message = await call.read()
        except grpc.aio.AioRpcError as error:
            raise _peer_error(recorder_id, address, error, self._timeout_s) from None
        finally:
            call.cancel()

    async def _call(
        self, recorder_id: str, address: str, method: Any, request: Any, headers: Sequence[tuple[str, str]]
    ) -> Any:
        metadata = self._metadata(headers)
        try:
            return await method(request, metadata=metadata, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise _peer_error(recorder_id, address, error, self._timeout_s) from None

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()


def _span(message: recordings_pb2.RecordedSpan, recorder_id: str) -> Span:
    return Span(
        message.range.start_ns,
        message.range.end_ns,
        message.segments,
        message.bytes,
        message.video_codec,
        message.width,
        message.height,
        message.has_audio,
        # The peer names itself; a peer too old to say is still the recorder that answered.
        message.recorder or recorder_id,
    )


def _peer_error(recorder_id: str, address: str, error: grpc.aio.AioRpcError, timeout_s: float) -> VmsdError:
    code = error.code()
    where = f"recorder {recorder_id} ({address})"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return VmsdError(ErrorKind.UNAVAILABLE, f"{where} did not answer within {timeout_s:g} s")
    if code is grpc.StatusCode.UNAVAILABLE:
        return VmsdError(ErrorKind.UNAVAILABLE, f"{where} cannot be reached ({error.details() or 'no detail'})")
    kind = _KINDS.get(code.name, ErrorKind.INTERNAL)
    return VmsdError(kind, f"{where} refused: {error.details() or code.name}")


def _audit_record(message: audit_pb2.AuditRecord) -> AuditRecord:
    return AuditRecord(
        seq=message.seq,
        time_ns=message.time_ns,
        action=message.action,
        principal=message.principal,
        role=message.role,
        peer=message.peer,
        camera_id=message.camera_id,
        start_ns=message.range.start_ns,
        end_ns=message.range.end_ns,
        reason=message.reason,
        case_ref=message.case_ref,
        outcome=message.outcome,
        detail_json=message.detail_json,
        prev_hash=message.prev_hash,
        hash=message.hash,
    )


def _part_header(message: export_pb2.PeerPart, recorder_id: str) -> PartHeader:
    return PartHeader(
        recorder_id=message.recorder_id,
        key_fingerprint=message.key_fingerprint_sha256,
        gaps=[Gap(g.range.start_ns, g.range.end_ns, g.reason, g.detail, g.open) for g in message.gaps],
        erased=[
            mf.ErasedSegment(
                start_ns=e.range.start_ns,
                end_ns=e.range.end_ns,
                bytes=e.bytes,
                sha256=e.sha256,
                prev_sha256=e.prev_sha256,
                erased_ns=e.erased_ns,
                reason=e.reason,
                recorder=recorder_id,
            )
            for e in message.erased
        ],
        segments=message.segments,
        bytes=message.bytes,
        in_progress_from_ns=message.in_progress_from_ns or None,
    )


def _part_segment(message: export_pb2.PeerSegment) -> PartSegment:
    return PartSegment(
        start_ns=message.range.start_ns,
        end_ns=message.range.end_ns,
        bytes=message.bytes,
        sha256=message.sha256,
        prev_sha256=message.prev_sha256,
        recorded_path=message.recorded_path,
        epoch=message.epoch or None,
        unfenced=message.unfenced,
        video_codec=message.video_codec,
        width=message.width,
        height=message.height,
        has_audio=message.has_audio,
    )
