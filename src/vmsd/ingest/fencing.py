"""A camera's recording as a member of a site: its ownership epoch and fencing state.

The site layer (vmsd.site) owns the object and changes it from the event loop; the recorder thread
reads it (plain attribute reads and writes of bools, safe under the GIL). Without [site] a recorder
has none and records exactly as a lone recorder does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fencing:
    # The etcd create revision of the camera's owner key when this recorder claimed it: every run
    # recorded under it says so in the catalogue (site_runs), so that overlapping footage from
    # two recorders is told apart by epoch, never silently merged.
    epoch: int
    # Past this recorder's fencing deadline (it could not renew its etcd lease in time): a peer
    # may own the camera by now. Recording goes on; the runs are marked unfenced.
    unfenced: bool = False
    # A newer epoch exists (a peer took the camera over, or an operator moved it): end the run at
    # the next segment boundary (or at once when no segment is open) and stop recording.
    release: bool = False
    # Why the run ends on release, for the gap that follows it in this recorder's catalogue.
    release_detail: str = ""
