"""The one rule for identifiers (camera and recorder ids).

Camera and recorder ids become directory names and appear in URLs and audit records, so they are
restricted to a portable, path-safe alphabet (no "/", no "..", no leading dot). Anchored with
\\A and \\Z, not ^ and $ ("$" also matches before a trailing newline), so that the pattern is safe
with re.match as well as fullmatch.
"""

from __future__ import annotations

import re

ID_PATTERN = r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
ID_RE = re.compile(ID_PATTERN)
