"""ListFunctionChecks: newest first, page by page."""

from __future__ import annotations

from tests.support.rpc import RunningDaemon, metadata
from vmsd.v1 import health_pb2, health_pb2_grpc


def test_list_function_checks_pages_back_to_the_oldest(server: RunningDaemon) -> None:
    for _ in range(3):
        server.run(server.daemon.checks.check(trigger="request", requested_by="paging-test"))
    stub = health_pb2_grpc.FunctionCheckServiceStub(server.channel)  # type: ignore[no-untyped-call]
    request = health_pb2.ListFunctionChecksRequest(limit=2)
    ids: list[int] = []
    while True:
        reply = stub.ListFunctionChecks(request, metadata=metadata("viewer"))
        assert len(reply.checks) <= 2
        ids += [c.id for c in reply.checks]
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    assert len(ids) >= 3 and ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert ids[-1] == 1
