"""One module per area of the JSON API; each has `add_routes(app, deps)` (called by web/routes.py)."""
