"""The web console of a site of recorders in a real browser (Debian's chromium): after a real
failover of a simulated camera (tests/support/site_ops.py `failover_site`), the new owner's
console shows which recorder recorded each span and plays a span the old owner recorded — its
segments fetched from the old owner through the recorder the browser talks to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import Problems, datetime_input
from tests.support.rpc import RunningDaemon, token
from tests.support.site_ops import failover_site, in_cam_spans

pytestmark = pytest.mark.slow
pytest.importorskip("playwright.sync_api")

MS = 1_000_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, RunningDaemon]]:
    with failover_site(tmp_path_factory.mktemp("site-console")) as recorders:
        yield recorders


def test_the_new_owners_console_plays_a_span_the_old_owner_recorded(
    browser: Any, site: tuple[RunningDaemon, RunningDaemon], problems: Problems
) -> None:
    rec_a, rec_b = site
    assert rec_b.daemon.web is not None
    url = f"http://127.0.0.1:{rec_b.daemon.web.port}"
    theirs = next(s for s in in_cam_spans(rec_b) if s.recorder == "rec-a")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems.watch(page)
    page.goto(url + "/")
    page.fill("#token", token("viewer"))
    page.click("button[type=submit]")
    page.wait_for_selector("#who .principal")
    page.goto(f"{url}/#/camera/in-cam")
    page.select_option("select[aria-label='how much of the day']", "600000")  # the last 10 minutes
    # Each span says which recorder recorded it.
    page.wait_for_function(
        "() => [...document.querySelectorAll('svg.timeline rect.recorded title')]"
        ".some(t => t.textContent.endsWith('on rec-a'))"
    )
    page.click("svg.timeline")
    page.wait_for_selector("dialog.review-dialog[open]")
    # The datetime inputs have whole seconds: from the second rec-a's footage starts in.
    page.fill("dialog input[name=from]", datetime_input(page, theirs.range.start_ns // MS))
    page.fill("dialog input[name=to]", datetime_input(page, theirs.range.end_ns // MS + 1000))
    page.fill("dialog input[name=reason]", "incident 10: the old owner's footage")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/cameras/in-cam/reviews")) as answer:
        page.click("dialog button[type=submit]")
    review = answer.value.json()
    assert review["segments"] and review["segments"][0]["recorder"] == "rec-a"
    page.wait_for_selector("dialog.review-dialog", state="detached")
    page.wait_for_function(
        "() => { const v = document.querySelector('video.review-video'); return v && v.currentTime > 1 && "
        "v.getVideoPlaybackQuality().totalVideoFrames > 10; }",
        timeout=20_000,
    )
    context.close()
    # rec-a served it to viewer-1 via rec-b, and audited the review and every read.
    service = "/vmsd.v1.RecordingService"
    reviews, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix=f"{service}/ReviewSegments")
    reads, _ = rec_a.daemon.audit.query(principal="viewer-1", action_prefix=f"{service}/ReadSegment")
    assert reviews[-1].reason == "incident 10: the old owner's footage"
    assert reads and {json.loads(r.detail_json)["via"] for r in reads + reviews[-1:]} == {"rec-b"}
