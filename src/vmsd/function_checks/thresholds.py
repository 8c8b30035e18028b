"""The numbers function checks judge by (why each value: docs/design/health.md)."""

from __future__ import annotations

from vmsd.units import NS_PER_S

# Pictures are judged on luma scaled to this width: enough for the statistics, cheap to compute.
SAMPLE_WIDTH = 320
# How much recent footage is decoded, and how many of its keyframes are judged.
PICTURE_WINDOW_NS = 30 * NS_PER_S
MAX_PICTURES = 5
# Black: dark on average, and even the brightest 0.1 % (bright_luma) no more than a dim grey: a
# night scene with one street light is dark, not black.
BLACK_MEAN_LUMA = 30.0
BLACK_BRIGHT_LUMA = 45.0
# Low detail: the mean absolute luma gradient between neighbouring pixels (at SAMPLE_WIDTH). A
# covered lens or a grey frame measures ~0; FFmpeg's testsrc2 pattern, mostly flat colour blocks,
# 1.8; a street scene several times that.
LOW_DETAIL = 0.5
# Frozen: consecutive samples (seconds apart) differ by less than this mean absolute luma. A live
# scene differs by sensor noise alone by more; a camera that keeps sending one frame by nothing.
FROZEN_MEAN_DIFF = 0.25
# Recording: fractions of the usual rate below which the camera is reported.
LOW_FPS_FRACTION = 0.5
LOW_BITRATE_FRACTION = 0.25
# A keyframe older than this while recording means the stream lost its keyframes.
KEYFRAME_MAX_AGE_NS = 20 * NS_PER_S
# Camera clock running this far from the recorder's (ppm, after slewing) is worth a look.
CLOCK_RATE_WARN_PPM = 500
# Storage write latency (64 KiB + fsync).
WRITE_LATENCY_WARN_NS = 500_000_000
WRITE_LATENCY_FAIL_NS = 5 * NS_PER_S
# The usual rate comes from up to a day of complete segments.
BASELINE_WINDOW_NS = 86_400 * NS_PER_S
BASELINE_SEGMENTS = 1440
MAX_STORED_LIST = 1000
