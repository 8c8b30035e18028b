"""Where vmsctl writes: tables on stdout, notes on stderr, or one JSON document."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict
from rich.console import Console

# Piped output is not squeezed into 80 columns: it is read by people with wide terminals and grep.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False)


def emit_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=False))


def to_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result
