"""Transport-neutral use cases: what a client of the recorder can ask, whatever the transport.

Each use case takes a `Principal` (access.py) and plain arguments, authorises, validates, names
what it touched for the audit record (`Activity`, activity.py) and returns domain types. The gRPC
servicers (vmsd.rpc) and the HTTP API both call these; see docs/design/services.md.
"""
