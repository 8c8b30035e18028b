"""vmsd.reports.render: one self-contained HTML page; a clear error when matplotlib is missing."""

from __future__ import annotations

import sys

import pytest

from tests.reports.test_build import DAY, T0, _inputs, _span
from vmsd.errors import VmsdError
from vmsd.recordings.search import SearchResult
from vmsd.reports.build import build
from vmsd.reports.coverage import Coverage
from vmsd.reports.render import to_html


def test_html_has_no_outside_resources_and_escapes_what_people_typed() -> None:
    found = SearchResult([_span(T0, T0 + DAY)], [])
    report = build(_inputs(coverage={"<cam>": Coverage(found, 0)}))
    page = to_html(report)
    assert "<cam>" not in page and "&lt;cam&gt;" in page
    assert 'src="http' not in page and "<script" not in page and "<link" not in page
    assert report.sha256 in page


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` meets when it is absent
    with pytest.raises(VmsdError, match=r"pip install 'vmsd\[report\]'"):
        to_html(build(_inputs()))
