"""Retention: day-on-day erasure past the retention window, never touching held evidence."""
