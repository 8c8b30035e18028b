"""Placement: all recorders make the same choice, weighted by spare capacity; full or ineligible ones get none."""

from __future__ import annotations

from collections import Counter

from vmsd.site.keys import MemberInfo
from vmsd.site.placement import choose, preferred


def _member(recorder_id: str, capacity: int = 64, owned: int = 0) -> MemberInfo:
    return MemberInfo(recorder_id, f"{recorder_id}:50051", capacity, owned, "0", "manual")


def test_the_choice_does_not_depend_on_the_order_members_are_listed() -> None:
    members = [_member("rec-a"), _member("rec-b"), _member("rec-c")]
    for index in range(50):
        camera = f"cam-{index}"
        assert choose(camera, members, []) == choose(camera, list(reversed(members)), [])


def test_cameras_spread_over_members_in_proportion_to_spare_capacity() -> None:
    even = Counter(choose(f"cam-{i}", [_member("rec-a"), _member("rec-b")], []) for i in range(2000))
    assert 850 < even["rec-a"] < 1150, even
    skewed = Counter(
        choose(f"cam-{i}", [_member("rec-a", owned=48), _member("rec-b", owned=0)], []) for i in range(2000)
    )
    # Spare 16 against 64: rec-a gets about a fifth.
    assert 250 < skewed["rec-a"] < 550, skewed


def test_full_and_ineligible_members_are_never_chosen() -> None:
    members = [_member("rec-a", capacity=4, owned=4), _member("rec-b"), _member("rec-c")]
    assert {choose(f"cam-{i}", members, []) for i in range(100)} == {"rec-b", "rec-c"}
    assert {choose(f"cam-{i}", members, ["rec-a", "rec-c"]) for i in range(100)} == {"rec-c"}
    assert choose("cam", members, ["rec-a"]) is None
    assert choose("cam", [], []) is None


def test_a_member_that_leaves_moves_only_its_own_cameras() -> None:
    three = [_member("rec-a"), _member("rec-b"), _member("rec-c")]
    two = three[:2]
    for i in range(200):
        before = choose(f"cam-{i}", three, [])
        if before != "rec-c":
            assert choose(f"cam-{i}", two, []) == before


def test_preferred_ignores_how_full_members_are_now() -> None:
    members = [_member("rec-a", owned=60), _member("rec-b", owned=0)]
    empty = [_member("rec-a"), _member("rec-b")]
    for i in range(50):
        assert preferred(f"cam-{i}", members, []) == choose(f"cam-{i}", empty, [])
