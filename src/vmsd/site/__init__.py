"""A site of recorders coordinated through etcd (docs/design/site.md, issue #15).

keys.py (the key layout and values), etcd.py (the client), placement.py (who should record a
camera), membership.py (this recorder's lease and fencing deadline), coordinator.py (ownership:
claims, watches, failover, moves, failback; drives the CameraManager).
"""
