"""The web console and JSON API: a transport over vmsd.services, like vmsd.rpc (docs/http.md)."""
