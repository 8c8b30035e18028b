"""Evidence export: a camera's time range as a signed bundle that anyone can verify offline.

A bundle is a directory `<storage root>/exports/<export_id>/`:
  master.mp4                 the footage remuxed from the recorded packets, never re-encoded;
                             one continuous timeline (gaps cut out; `timeline` in the manifest maps
                             master time to wall time), moov up front (faststart), creation_time
                             set to the first frame's wall time. A change of stream parameters
                             (resolution, codec configuration) mid-range starts master-2.mp4, …
  segments/<day>T<time>.mp4  the recorded segment files, bit for bit (unless originals are off):
                             the native originals, re-hashable against the recorder's chain
  working-copy-redacted.mp4  only when asked: privacy-masked, re-encoded (a processed copy)
  recorder-public-key.pem    the recorder's Ed25519 public key
  README.txt                 how to verify, with vmsctl or by hand (openssl, sha256sum)
  SHA256SUMS                 `sha256sum -c` input for every file above
  manifest.json              what the bundle claims (manifest.py), including every file's hash
  manifest.sig               Ed25519 signature over manifest.json's exact bytes

A range that reaches into the segment being written (`--to now`) includes that segment's
complete fragments: the bytes up to its last complete `moof`+`mdat`, copied and hashed exactly,
listed with `open_at_export` (manifest.py). The requested time after them is a
`recording_in_progress` gap — recorded footage is never called `not_recorded`.

With a site of recorders, a range whose footage lies on several recorders (across a failover) is
one `vmsd-export/2` bundle: each recorder's originals under `segments/<recorder>/`, a master per
recorder (`master-<recorder>.mp4`), and a manifest naming each recorder's part and chain, the time
two of them both recorded, and any part that could not be fetched (manifest.py, site_parts.py).
"""
