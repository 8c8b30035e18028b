"""Camera ingest: one RTSP session per camera, demuxed with PyAV and handed to storage without re-encoding."""
