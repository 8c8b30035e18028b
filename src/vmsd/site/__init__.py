"""A site of recorders coordinated through etcd (docs/design/site.md)."""
