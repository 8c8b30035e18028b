"""One read of the site's keys against a real etcd: members, owners with their epochs, moves."""

from __future__ import annotations

from pathlib import Path

from tests.site.harness import site_config
from tests.support.etcd import EtcdCluster
from vmsd.site.etcd import open_client
from vmsd.site.keys import MemberInfo, MoveRequest, OwnerInfo, SiteKeys, encode
from vmsd.site.view import read_view


async def test_a_view_reads_every_kind_of_key_and_leaves_out_what_it_cannot_decode(
    tmp_path: Path, etcd: EtcdCluster
) -> None:
    config = site_config(tmp_path, "rec-a", etcd.endpoints, ["cam-1"])
    assert config.site is not None
    keys = SiteKeys(config.site.name)
    client = await open_client(config.site)
    try:
        await client.put(keys.member("rec-a"), encode(MemberInfo("rec-a", "127.0.0.1:1", 64, 1, "1", "manual")))
        await client.put(keys.owner("cam-1"), encode(OwnerInfo("rec-a", 1, how="placement")))
        await client.put(keys.owner("cam-2"), b"not json")  # a key written by something else
        await client.put(keys.move("cam-1"), encode(MoveRequest("cam-1", "rec-b", "admin-1", "maintenance", 2)))
        view = await read_view(client, keys)
        [owner_kv] = [kv for kv in await client.get_prefix(keys.owner("cam-1")) if bytes(kv.key) == keys.owner("cam-1")]
    finally:
        await client.close()
    assert list(view.members) == ["rec-a"] and view.members["rec-a"].spare == 63
    assert list(view.owners) == ["cam-1"]  # cam-2's value is not an owner record: left out
    owner = view.owners["cam-1"]
    assert (owner.info.recorder_id, owner.epoch) == ("rec-a", owner_kv.create_revision)
    assert view.moves["cam-1"].to == "rec-b"
