"""vmsd's own RTSP client (issue #16): the protocol layer, free of I/O, module by module.

See docs/design/native-ingest.md for the module map and the quirks each module tolerates.
"""
