"""Credentials never reach logs, errors or API answers: URL userinfo and query-string credentials."""

from __future__ import annotations

import pytest

from vmsd.log import redact_url, register_url_credentials, scrub


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("rtsp://admin:pw@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        (
            "rtsp://10.0.0.5/live?user=admin&password=Secr3t&channel=1",
            "rtsp://10.0.0.5/live?user=***&password=***&channel=1",
        ),
        ("rtsp://10.0.0.5/live?USER=admin&PWD=Secr3t", "rtsp://10.0.0.5/live?USER=***&PWD=***"),
        ("rtsp://10.0.0.5/live?channel=1&Pass=Secr3t", "rtsp://10.0.0.5/live?channel=1&Pass=***"),
        ("rtsp://10.0.0.5/live?token=abc123&subtype=0", "rtsp://10.0.0.5/live?token=***&subtype=0"),
        ("rtsp://10.0.0.5/live?auth=YWRtaW46cHc%3D", "rtsp://10.0.0.5/live?auth=***"),
        ("rtsp://10.0.0.5/live?access_token=abc&api_key=k", "rtsp://10.0.0.5/live?access_token=***&api_key=***"),
        (
            "rtsp://u:p@10.0.0.5/live?username=admin&passwd=x",
            "rtsp://***@10.0.0.5/live?username=***&passwd=***",
        ),
        ("rtsp://10.0.0.5/live?channel=1&subtype=0", "rtsp://10.0.0.5/live?channel=1&subtype=0"),
    ],
)
def test_redact_url_hides_userinfo_and_query_credentials(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_scrub_hides_query_credentials_quoted_in_error_text() -> None:
    """FFmpeg's messages quote the URL it failed to open; last_error is built from them."""
    url = "rtsp://10.0.0.5/live?User=admin&Password=Qs-Secr3t&channel=1"
    text = scrub(f"cannot open {url}: Connection refused")
    assert "Qs-Secr3t" not in text and "admin" not in text
    assert "channel=1" in text and "Connection refused" in text


def test_query_passwords_are_registered_as_secrets() -> None:
    """Registered secrets are scrubbed anywhere, even where a message does not quote the whole URL."""
    register_url_credentials("rtsp://10.0.0.5/live?user=someone&pwd=Reg-Secr3t-pw")
    assert scrub("option value 'Reg-Secr3t-pw' rejected") == "option value '***' rejected"
