"""The list of well-known tokens covers every token the repository publishes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from vmsd.config import Role, load_config
from vmsd.services.access import ROLE_PERMISSIONS
from vmsd.tokens import PUBLISHED_TOKENS, published, token_sha256

REPO = Path(__file__).resolve().parents[1]


def test_every_token_in_the_demo_config_is_known() -> None:
    demo = REPO / "config" / "demo.toml"
    config = load_config(demo)
    assert [t.name for _, t in published(config)] == [t.name for t in config.auth.tokens]
    # The tokens the demo file's header hands out are the ones it configures.
    header_tokens = re.findall(r'"([^"]+-token)"', demo.read_text().split("\n\n")[0])
    assert header_tokens and {token_sha256(t) for t in header_tokens} == {t.sha256 for t in config.auth.tokens}


def test_every_token_the_docs_show_is_known() -> None:
    texts = [REPO / "README.md", REPO / "scripts" / "demo.py", *sorted((REPO / "docs").rglob("*.md"))]
    shown: set[str] = set()
    for path in texts:
        text = path.read_text()
        shown.update(re.findall(r"VMSD_TOKEN=([A-Za-z0-9._-]+)", text))
        # An upper-case word after --token is a placeholder (`--token T`), as in argparse's help.
        shown.update(re.findall(r"--token[ =](?![A-Z]+\b)([A-Za-z0-9._-]+)", text))
        shown.update(re.findall(r"printf %s '([^']+)' \| sha256sum", text))
    assert "demo-admin-token" in shown
    assert shown <= set(PUBLISHED_TOKENS), shown - set(PUBLISHED_TOKENS)


def test_the_config_and_the_auth_code_know_the_same_roles() -> None:
    assert list(get_args(Role)) == list(ROLE_PERMISSIONS)
