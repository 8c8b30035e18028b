"""Browser sessions against the real daemon: login, cookie flags, CSRF, expiry, logout, audit."""

from __future__ import annotations

import aiohttp

from tests.support.rpc import S, token
from tests.support.web import Console, bearer
from vmsd.clock import FakeClock
from vmsd.config import TokenConfig
from vmsd.services.access import Principal
from vmsd.web.sessions import Session, SessionStore

SESSION = "/api/v1/session"


async def assert_signed_out(console: Console, client: aiohttp.ClientSession) -> None:
    """The browser's cookie no longer names a session: the console's question says "nobody", and
    anything that needs a principal is 401."""
    async with client.get(f"{console.url}{SESSION}") as response:
        assert response.status == 200
        assert await response.json() == {"principal": None, "csrf": None}
    async with client.get(f"{console.url}/api/v1/cameras") as response:
        assert response.status == 401
        assert (await response.json())["error"]["kind"] == "UNAUTHENTICATED"


async def test_login_answers_who_and_sets_a_session_cookie(console: Console, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{console.url}{SESSION}", json={"token": token("viewer")}) as response:
        assert response.status == 200
        answer = await response.json()
        set_cookie = response.headers.getall("Set-Cookie")
        assert response.headers["Cache-Control"] == "no-store"
    assert answer["principal"] == "viewer-1"
    assert answer["role"] == "viewer"
    assert answer["masked"] is True
    assert "recordings.play" in answer["permissions"] and "audit.read" not in answer["permissions"]
    assert len(answer["csrf"]) >= 32
    [cookie] = set_cookie
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert attributes[0].startswith("vmsd_session=") and len(attributes[0]) > len("vmsd_session=") + 32
    assert {"httponly", "samesite=lax", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # no TLS here
    # The session id is in no answer body.
    session_id = attributes[0].split("=", 1)[1]
    assert session_id not in str(answer)
    async with client.get(f"{console.url}{SESSION}") as response:
        assert response.status == 200
        again = await response.json()
    assert again["principal"] == "viewer-1" and again["csrf"] == answer["csrf"]
    supervisor = await console.login(client, "supervisor")
    assert supervisor["masked"] is False and "audit.read" in supervisor["permissions"]


async def test_a_bad_token_is_401_with_the_error_document_and_audited(
    console: Console, client: aiohttp.ClientSession
) -> None:
    before = len(console.audit(f"POST {SESSION}"))
    async with client.post(f"{console.url}{SESSION}", json={"token": "not-a-configured-token"}) as response:
        assert response.status == 401
        body = await response.json()
        assert "Set-Cookie" not in response.headers
    assert body == {"error": {"kind": "UNAUTHENTICATED", "message": "unknown or revoked token"}}
    records = console.audit(f"POST {SESSION}")[before:]
    assert [r.outcome for r in records] == ["UNAUTHENTICATED"]
    assert records[0].principal == "" and records[0].peer.startswith("ipv4:127.0.0.1:")
    assert "not-a-configured-token" not in records[0].detail_json


async def test_a_login_without_a_token_is_400_naming_the_field(console: Console, client: aiohttp.ClientSession) -> None:
    async with client.post(f"{console.url}{SESSION}", json={}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == {"kind": "INVALID_ARGUMENT", "message": "field 'token' is required"}
    async with client.post(f"{console.url}{SESSION}", data="token=x") as response:  # a form, not JSON
        assert response.status == 400
        assert "application/json" in (await response.json())["error"]["message"]


async def test_logins_and_logouts_are_audited(console: Console, client: aiohttp.ClientSession) -> None:
    logins = len(console.audit(f"POST {SESSION}"))
    logouts = len(console.audit(f"DELETE {SESSION}"))
    answer = await console.login(client, "operator")
    async with client.delete(f"{console.url}{SESSION}", headers={"X-CSRF-Token": answer["csrf"]}) as response:
        assert response.status == 200
    [login] = console.audit(f"POST {SESSION}")[logins:]
    [logout] = console.audit(f"DELETE {SESSION}")[logouts:]
    assert (login.principal, login.role, login.outcome) == ("operator-1", "operator", "OK")
    assert (logout.principal, logout.outcome) == ("operator-1", "OK")
    # Logged out: the cookie is worthless now.
    await assert_signed_out(console, client)


async def test_a_mutation_with_the_cookie_needs_the_csrf_token(console: Console, client: aiohttp.ClientSession) -> None:
    answer = await console.login(client, "viewer")
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": answer["csrf"][:-1]}):
        async with client.delete(f"{console.url}{SESSION}", headers=headers) as response:
            assert response.status == 403
            error = (await response.json())["error"]
            assert error["kind"] == "PERMISSION_DENIED" and "X-CSRF-Token" in error["message"]
    denied = console.audit(f"DELETE {SESSION}")
    assert denied[-1].outcome == "PERMISSION_DENIED" and denied[-1].principal == "viewer-1"
    # Still logged in: the refused logouts did nothing.
    async with client.get(f"{console.url}{SESSION}") as response:
        assert response.status == 200
    async with client.delete(f"{console.url}{SESSION}", headers={"X-CSRF-Token": answer["csrf"]}) as response:
        assert response.status == 200


async def test_a_bearer_token_needs_no_session_and_no_csrf(console: Console) -> None:
    async with aiohttp.ClientSession() as client:  # no cookies at all
        async with client.get(f"{console.url}{SESSION}", headers=bearer("integrator")) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["principal"] == "integrator-1" and answer["csrf"] is None
        # A mutation with a bearer token passes the CSRF check (and is refused only for what it is).
        async with client.delete(f"{console.url}{SESSION}", headers=bearer("integrator")) as response:
            assert response.status == 400
            assert "bearer" in (await response.json())["error"]["message"]
        async with client.get(f"{console.url}{SESSION}", headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401


async def test_a_session_ends_after_the_idle_time(console: Console, client: aiohttp.ClientSession) -> None:
    idle_ns = console.running.config.web.session_idle_ns
    await console.login(client, "viewer")
    console.clock.advance(idle_ns - S)
    async with client.get(f"{console.url}{SESSION}") as response:
        assert (await response.json())["principal"] == "viewer-1"  # used: the idle timer restarts
    console.clock.advance(idle_ns - S)
    async with client.get(f"{console.url}{SESSION}") as response:
        assert (await response.json())["principal"] == "viewer-1"
    console.clock.advance(idle_ns)
    await assert_signed_out(console, client)


async def test_a_session_ends_after_its_lifetime_however_busy(console: Console, client: aiohttp.ClientSession) -> None:
    config = console.running.config.web
    await console.login(client, "viewer")
    step_ns = config.session_idle_ns // 2
    used_ns = 0
    while used_ns + step_ns < config.session_max_ns:
        console.clock.advance(step_ns)
        used_ns += step_ns
        async with client.get(f"{console.url}{SESSION}") as response:
            assert (await response.json())["principal"] == "viewer-1", used_ns
    console.clock.advance(config.session_max_ns - used_ns)
    await assert_signed_out(console, client)


# -- the store alone (no daemon): watching is use, sweeping ends what expired -----------------

MIN_NS = 60 * S


def _store() -> tuple[FakeClock, SessionStore, Session, str, list[str]]:
    clock = FakeClock()
    store = SessionStore(clock, idle_ns=30 * MIN_NS, max_ns=12 * 60 * MIN_NS)
    config = TokenConfig(name="wall", sha256="0" * 64, role="operator")
    session_id, session = store.create(Principal("wall", "operator", ("*",)), config)
    ended: list[str] = []
    session.on_end.append(lambda: ended.append("stream closed"))
    return clock, store, session, session_id, ended


def test_a_session_that_only_watches_live_video_is_not_idle() -> None:
    clock, store, session, session_id, ended = _store()
    store.stream_opened(session)
    clock.advance(3 * 60 * MIN_NS)  # a video wall: hours of watching, no request
    assert store.sweep() == 0 and ended == []
    assert store.lookup(session_id) is session
    # The idle time starts when the last stream ends.
    store.stream_closed(session)
    clock.advance(30 * MIN_NS - S)
    assert store.sweep() == 0
    clock.advance(S)
    assert store.sweep() == 1 and ended == ["stream closed"]
    assert store.lookup(session_id) is None


def test_sweeping_ends_a_watching_session_at_its_lifetime_and_closes_its_streams() -> None:
    clock, store, session, session_id, ended = _store()
    store.stream_opened(session)
    clock.advance(12 * 60 * MIN_NS - S)
    assert store.sweep() == 0
    clock.advance(S)
    # No request is needed for the end to reach the open stream.
    assert store.sweep() == 1 and ended == ["stream closed"]
    assert store.lookup(session_id) is None
