"""The site's key layout in etcd and the JSON values stored under it.

    /vmsd/<site>/members/<recorder_id>   MemberInfo, on the recorder's lease
    /vmsd/<site>/owners/<camera_id>      OwnerInfo, on the owner's lease; its create revision is the EPOCH
    /vmsd/<site>/moves/<camera_id>       MoveRequest (an operator's move, until the target has claimed)

Values are JSON so that `etcdctl get --prefix /vmsd/` is readable by an operator.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

ROOT = "/vmsd"


@dataclass(frozen=True)
class MemberInfo:
    recorder_id: str
    address: str  # where peers reach its gRPC ([site] advertise)
    capacity: int  # cameras it may own
    owned: int  # cameras it owns now (updated as it claims and releases)
    version: str  # vmsd version
    failback: str  # "manual" | "auto"

    @property
    def spare(self) -> int:
        return max(0, self.capacity - self.owned)


@dataclass(frozen=True)
class OwnerInfo:
    recorder_id: str
    claimed_ns: int  # wall time of the claim
    # The epoch this claim replaced (0: none known) and how: "placement", "failover", "move", "failback".
    previous_epoch: int = 0
    previous_owner: str = ""
    how: str = "placement"


@dataclass(frozen=True)
class MoveRequest:
    camera_id: str
    to: str
    principal: str
    reason: str
    requested_ns: int


def encode(value: MemberInfo | OwnerInfo | MoveRequest) -> bytes:
    return json.dumps(asdict(value), sort_keys=True).encode()


def _decode(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def decode_member(data: bytes) -> MemberInfo:
    return MemberInfo(**_decode(data))


def decode_owner(data: bytes) -> OwnerInfo:
    return OwnerInfo(**_decode(data))


def decode_move(data: bytes) -> MoveRequest:
    return MoveRequest(**_decode(data))


@dataclass(frozen=True)
class SiteKeys:
    site: str

    @property
    def prefix(self) -> bytes:
        return f"{ROOT}/{self.site}/".encode()

    @property
    def members(self) -> bytes:
        return self.prefix + b"members/"

    @property
    def owners(self) -> bytes:
        return self.prefix + b"owners/"

    @property
    def moves(self) -> bytes:
        return self.prefix + b"moves/"

    def member(self, recorder_id: str) -> bytes:
        return self.members + recorder_id.encode()

    def owner(self, camera_id: str) -> bytes:
        return self.owners + camera_id.encode()

    def move(self, camera_id: str) -> bytes:
        return self.moves + camera_id.encode()

    @staticmethod
    def last_part(key: bytes) -> str:
        return key.rsplit(b"/", 1)[-1].decode()
