"""`vmsctl`: the command-line client of vmsd's gRPC control plane.

    vmsctl [--server HOST:PORT] [--token-file F] [--tls-ca F --tls-cert F --tls-key F] [--json] COMMAND

Commands: cameras · search · play · relay · hold add|list|release · retention · export · verify
(offline) · audit [--since T] [--verify] · health. `VMSD_SERVER` stands in for --server. The token:
--token-file F, else --token T (visible to other users in `ps`), else `VMSD_TOKEN`.
A reader that closes stdout (`relay … -o - | ffplay -`, then quitting the player) ends the command
quietly with 0; a relay or play that fails or receives nothing leaves no output file.
Times: ISO-8601 with `Z` or an offset, or relative: `now`, `-30s`, `-10m`, `-2h`, `-1d`.
Exit codes: 0 ok, 2 usage error, 3 not found, 4 permission denied/unauthenticated, 1 other;
`verify` also 5: the bundle is intact but its key was not checked against a trusted one.
"""

from __future__ import annotations

from vmsd.cli.vmsctl.main import build_parser, main

__all__ = ["build_parser", "main"]
