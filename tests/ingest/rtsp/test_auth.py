"""Basic and Digest authentication, stale nonces, credentials kept out of messages (auth.py)."""

from __future__ import annotations

import hashlib

import pytest

from vmsd.ingest.rtsp.auth import Authenticator, AuthError, Credentials, parse_challenges, split_credentials

MUFASA = Credentials("Mufasa", "Circle Of Life")
# RFC 2617 §3.5's example challenge.
RFC2617 = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def fields(header: str) -> dict[str, str]:
    return parse_challenges([header])[0].params


def test_digest_with_qop_gives_the_rfc_2617_answer() -> None:
    a = Authenticator(MUFASA, cnonce=lambda: "0a4f113b")
    a.on_unauthorized([RFC2617])
    header = a.authorization("GET", "/dir/index.html")
    assert header is not None and header.startswith("Digest ")
    f = fields(header)
    assert f["response"] == "6629fae49393a05397450978507c4ef1"
    assert (f["nc"], f["cnonce"], f["qop"], f["opaque"]) == (
        "00000001",
        "0a4f113b",
        "auth",
        "5ccc069c403ebaf9f0171e9517f40e41",
    )
    assert fields(a.authorization("GET", "/dir/index.html") or "")["nc"] == "00000002"


def test_digest_without_qop() -> None:
    a = Authenticator(Credentials("admin", "12345"))
    a.on_unauthorized(['Digest realm="IP Camera(12345)", nonce="abc123"'])
    f = fields(a.authorization("DESCRIBE", "rtsp://cam/live") or "")
    ha1 = hashlib.md5(b"admin:IP Camera(12345):12345").hexdigest()
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://cam/live").hexdigest()
    assert f["response"] == hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()
    assert "nc" not in f and "cnonce" not in f


def test_digest_preferred_over_basic_and_basic_alone() -> None:
    a = Authenticator(Credentials("u", "p"))
    a.on_unauthorized(['Basic realm="x"', 'Digest realm="x", nonce="n"'])
    assert a.scheme == "digest"
    b = Authenticator(Credentials("u", "p"))
    assert b.authorization("OPTIONS", "rtsp://c/") is None  # nothing before a challenge
    b.on_unauthorized(['Basic realm="x"'])
    assert b.authorization("OPTIONS", "rtsp://c/") == "Basic dTpw"


def test_a_stale_nonce_is_retried_with_the_new_nonce_without_failing() -> None:
    a = Authenticator(Credentials("u", "p"), cnonce=lambda: "c")
    a.on_unauthorized(['Digest realm="r", nonce="one", qop="auth"'])
    assert fields(a.authorization("PLAY", "u") or "")["nonce"] == "one"
    a.on_unauthorized(['Digest realm="r", nonce="two", qop="auth", stale=TRUE'])
    f = fields(a.authorization("PLAY", "u") or "")
    assert (f["nonce"], f["nc"]) == ("two", "00000001")


@pytest.mark.parametrize("second", ['Digest realm="r", nonce="one"', 'Digest realm="r", nonce="other"'])
def test_a_second_challenge_after_answering_means_wrong_credentials(second: str) -> None:
    a = Authenticator(Credentials("admin", "s3cret-pw"))
    a.on_unauthorized(['Digest realm="r", nonce="one"'])
    a.authorization("DESCRIBE", "rtsp://c/")
    with pytest.raises(AuthError, match="refused the user name or password") as info:
        a.on_unauthorized([second])
    assert "s3cret-pw" not in str(info.value) and "admin" not in str(info.value)


def test_basic_refused() -> None:
    a = Authenticator(Credentials("admin", "s3cret-pw"))
    a.on_unauthorized(['Basic realm="r"'])
    a.authorization("DESCRIBE", "rtsp://c/")
    with pytest.raises(AuthError, match=r"Basic, realm 'r'"):
        a.on_unauthorized(['Basic realm="r"'])


@pytest.mark.parametrize(
    ("challenge", "words"),
    [
        ('Bearer realm="x"', "does not support"),
        ('Digest realm="x", nonce="n", algorithm=SHA-512-256', "algorithm"),
        ('Digest realm="x", nonce="n", qop="auth-int"', "qop"),
        ('Digest realm="x"', "no nonce"),
    ],
)
def test_challenges_vmsd_cannot_answer(challenge: str, words: str) -> None:
    with pytest.raises(AuthError, match=words):
        Authenticator(Credentials("u", "p")).on_unauthorized([challenge])


def test_a_challenge_without_credentials_in_the_url() -> None:
    with pytest.raises(AuthError, match="URL has no user name"):
        Authenticator(None).on_unauthorized(['Digest realm="x", nonce="n"'])


def test_sha256_and_sess_variants() -> None:
    a = Authenticator(Credentials("u", "p"), cnonce=lambda: "cn")
    a.on_unauthorized(['Digest realm="r", nonce="n", algorithm=SHA-256-sess, qop=auth'])
    f = fields(a.authorization("SETUP", "rtsp://c/t") or "")
    h = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    ha1 = h(f"{h('u:r:p')}:n:cn")
    assert f["response"] == h(f"{ha1}:n:00000001:cn:auth:{h('SETUP:rtsp://c/t')}")
    assert f["algorithm"] == "SHA-256-sess"


def test_credentials_come_out_of_the_url_decoded_and_never_show_in_repr() -> None:
    url, creds = split_credentials("rtsp://ad%40min:p%3Ass@cam:554/live?x=1")
    assert url == "rtsp://cam:554/live?x=1"
    assert creds == Credentials("ad@min", "p:ss")
    assert "p:ss" not in repr(creds) and "ad@min" not in repr(creds)
    assert split_credentials("rtsp://cam/x") == ("rtsp://cam/x", None)


def test_challenge_parsing_quoted_escapes_and_several_per_header() -> None:
    [digest, basic] = parse_challenges(['Digest realm="a \\"b\\", c", nonce=xyz, Basic realm="z"'])
    assert digest.params == {"realm": 'a "b", c', "nonce": "xyz"}
    assert (basic.scheme, basic.params) == ("basic", {"realm": "z"})
