"""Recorded footage as users see it: search (spans, gaps, coverage) and playback (remux to MPEG-TS)."""
