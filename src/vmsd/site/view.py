"""One read of a site's keys in etcd (keys.py's layout): its live members, each camera's owner
with the ownership epoch, and the pending operator moves. The coordinator acts on one such view
per pass; a key it cannot decode is logged and left out (never a reason to stop coordinating)."""

from __future__ import annotations

from dataclasses import dataclass

from vmsd.log import get_logger
from vmsd.site.etcd import SiteEtcdClient
from vmsd.site.keys import MemberInfo, MoveRequest, OwnerInfo, SiteKeys, decode_member, decode_move, decode_owner

log = get_logger(component="site")


@dataclass(frozen=True)
class Owner:
    camera_id: str
    info: OwnerInfo
    epoch: int  # the owner key's create revision
    mod_revision: int
    lease: int


@dataclass(frozen=True)
class SiteView:
    """One read of the site's keys (one range request: a consistent revision)."""

    members: dict[str, MemberInfo]
    owners: dict[str, Owner]
    moves: dict[str, MoveRequest]


async def read_view(client: SiteEtcdClient, keys: SiteKeys) -> SiteView:
    result = await client.get_prefix(keys.prefix)
    members: dict[str, MemberInfo] = {}
    owners: dict[str, Owner] = {}
    moves: dict[str, MoveRequest] = {}
    for kv in result:
        key = bytes(kv.key)
        name = SiteKeys.last_part(key)
        try:
            if key.startswith(keys.members):
                members[name] = decode_member(kv.value)
            elif key.startswith(keys.owners):
                owners[name] = Owner(name, decode_owner(kv.value), kv.create_revision, kv.mod_revision, kv.lease)
            elif key.startswith(keys.moves):
                moves[name] = decode_move(kv.value)
        except (ValueError, TypeError) as error:
            log.warning("site_key_unreadable", key=key.decode(errors="replace"), error=str(error))
    return SiteView(members, owners, moves)
