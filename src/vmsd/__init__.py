"""vmsd: a video-management daemon for public-space CCTV."""

__version__ = "0.1.0"
