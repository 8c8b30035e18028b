"""The event stream: what happened on this recorder, published once, kept for a window, fanned out."""
