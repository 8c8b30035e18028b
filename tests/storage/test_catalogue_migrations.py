"""Every released catalogue schema migrates to this release's: fsck clean, chains intact, ids never reused.

The released schemas are frozen under tests/storage/schemas/ (taken from git history). Each test
records real footage, gaps, a hold, an erasure and audit records with the current code, copies
those rows into a catalogue made with a released schema (what a recorder of that release holds),
then lets vmsd open it the way `vmsd run` does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.daemon import run_vmsd, write_config
from tests.support.feed import feed
from vmsd.audit import AuditEntry, AuditLog
from vmsd.clock import FakeClock
from vmsd.errors import VmsdError
from vmsd.ingest.segmenter import Segmenter
from vmsd.storage.catalogue import SCHEMA_VERSION, Catalogue, GapReason
from vmsd.storage.erase import erase_segment
from vmsd.storage.recovery import reconcile
from vmsd.storage.store import Storage

S = 1_000_000_000
T = 1_767_225_600 * S
SCHEMAS = Path(__file__).parent / "schemas"
RELEASED_V1 = sorted(SCHEMAS.glob("catalogue-v1-*.sql"))
PRE_AUTOINCREMENT = ("384cbf3", "3a141da", "d514f4f", "51ab70f")


def _schema(db: Path) -> set[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    finally:
        conn.close()
    return {tuple(r) for r in rows}


def _from_fixture(db: Path, fixture: Path, version: int) -> None:
    conn = sqlite3.connect(db)
    conn.executescript(fixture.read_text())
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(version),))
    conn.commit()
    conn.close()


def _record(root: Path, media: Path) -> None:
    """Footage of two sessions (a gap between), a hold, the oldest segment erased, audit records;
    then, as recovery does with a torn newest segment, a 'writing' row dropped."""
    storage = Storage(root)
    storage.open()
    reconcile(storage)
    catalogue = storage.catalogue
    catalogue.upsert_camera("cam", "Gate", "North", T)
    clock = FakeClock(wall_ns=T)
    segmenter = Segmenter("cam", storage, clock, segment_duration_ns=4 * S)
    feed(segmenter, clock, media, seconds=12)
    clock.advance(10 * S)
    feed(segmenter, clock, media, seconds=4)
    rows = catalogue.segments("cam")
    catalogue.add_hold(
        camera_ids=["cam"],
        start_ns=rows[1].start_ns,
        end_ns=rows[2].end_ns or 0,
        case_ref="CASE-1",
        reason="incident",
        created_by="alice",
        created_ns=T,
        until_ns=None,
    )
    catalogue.put_api_camera("cam2", '{"id": "cam2"}', T)
    erase_segment(catalogue, storage.layout, rows[0], erased_ns=T + 60 * S, reason="retention")
    torn = catalogue.insert_writing_segment(
        camera_id="cam",
        run_id=None,
        path="recordings/cam/torn.mp4",
        start_ns=clock.wall_ns(),
        prev_sha256=storage.chain_head("cam"),
        video_codec="h264",
        width=1,
        height=1,
        has_audio=False,
    )
    catalogue.delete_segment(torn, erased_ns=clock.wall_ns(), reason="torn")
    storage.close()
    audit = AuditLog(storage.layout.audit_path, clock, anchor_path=storage.layout.audit_anchor_path)
    audit.open()
    for action in ("/vmsd.v1.RecordingService/Play", "hold.add", "retention.erase"):
        audit.append(AuditEntry(action, "alice", role="reviewer", camera_id="cam", reason="incident"))
    audit.close()


def _downgrade(root: Path, fixture: Path) -> None:
    """Replace the root's catalogue with one of the released schema holding the same rows."""
    current = root / "catalogue.db"
    old = root / "released.db"
    _from_fixture(old, fixture, 1)
    conn = sqlite3.connect(old)
    conn.execute("ATTACH DATABASE ? AS src", (str(current),))
    tables = [r[0] for r in conn.execute("SELECT name FROM main.sqlite_master WHERE type='table'")]
    for table in tables:
        if table not in ("meta", "sqlite_sequence"):
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM src.{table}")
    if "sqlite_sequence" in tables:  # that release kept the highest id ever used: so does its copy
        conn.execute("DELETE FROM main.sqlite_sequence")
        conn.execute("INSERT INTO main.sqlite_sequence SELECT * FROM src.sqlite_sequence")
    conn.commit()
    conn.execute("DETACH DATABASE src")
    conn.close()
    for suffix in ("-wal", "-shm"):
        current.with_name(current.name + suffix).unlink(missing_ok=True)
    old.replace(current)


def _ids_seen(db: Path) -> int:
    """The highest segment id the released catalogue knows of: its rows, and its sequence if it has one."""
    conn = sqlite3.connect(db)
    try:
        (highest,) = conn.execute("SELECT COALESCE(max(id), 0) FROM segments").fetchone()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone():
            (seq,) = conn.execute("SELECT COALESCE(max(seq), 0) FROM sqlite_sequence WHERE name='segments'").fetchone()
            highest = max(highest, seq)
        return int(highest)
    finally:
        conn.close()


def _insert_segment(catalogue: Catalogue, path: str) -> int:
    return catalogue.insert_writing_segment(
        camera_id="cam",
        run_id=None,
        path=path,
        start_ns=T + 3600 * S,
        prev_sha256="0" * 64,
        video_codec="h264",
        width=1,
        height=1,
        has_audio=False,
    )


@pytest.mark.parametrize("fixture", RELEASED_V1, ids=lambda p: p.stem)
def test_every_released_schema_migrates(tmp_path: Path, h264_ts: Path, fixture: Path) -> None:
    root = tmp_path / "root"
    config = write_config(tmp_path / "vmsd.toml", root, {})
    _record(root, h264_ts)
    _downgrade(root, fixture)
    catalogue_path = root / "catalogue.db"
    highest = _ids_seen(catalogue_path)
    released_schema = _schema(catalogue_path)

    dry = run_vmsd("migrate", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{catalogue_path}: schema version 1, this vmsd uses {SCHEMA_VERSION}" in dry.stdout
    assert "would run: to version 2: segment ids never reused" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    assert _schema(catalogue_path) == released_schema
    assert not (root / "backups").exists()

    storage = Storage(root)
    storage.open()  # what `vmsd run` does at start
    try:
        catalogue = storage.catalogue
        assert catalogue.get_meta("schema_version") == str(SCHEMA_VERSION) == "5"
        backup = catalogue.backup_path
        assert backup is not None and backup.parent == root / "backups"
        assert backup.name.startswith("catalogue-v1-") and backup.suffix == ".db"
        assert backup.stat().st_mode & 0o777 == 0o600 and backup.parent.stat().st_mode & 0o777 == 0o700
        assert _schema(backup) == released_schema  # the copy opens, and is the catalogue as it was
        copy = sqlite3.connect(backup)
        try:
            chain = copy.execute("SELECT id, sha256, prev_sha256 FROM segments ORDER BY camera_id, start_ns, id")
            assert chain.fetchall() == [(r.id, r.sha256, r.prev_sha256) for r in catalogue.segments()]
            assert copy.execute("SELECT reason FROM gaps ORDER BY start_ns, id").fetchall() == [
                (g.reason,) for g in catalogue.gaps("cam")
            ]
        finally:
            copy.close()
        assert GapReason.CAMERA_OFFLINE in [g.reason for g in catalogue.gaps("cam")]
        assert len(catalogue.erased_segments("cam")) == 1

        # Never reused: neither an id the released catalogue knew, nor one dropped after migrating.
        first = _insert_segment(catalogue, "recordings/cam/new-1.mp4")
        assert first > highest
        catalogue.delete_segment(first, erased_ns=T, reason="torn")
        assert _insert_segment(catalogue, "recordings/cam/new-2.mp4") > first
        with catalogue._tx() as conn:  # leave the catalogue as it was for fsck
            conn.execute("DELETE FROM segments WHERE path LIKE 'recordings/cam/new-%'")
    finally:
        storage.close()

    # A migrated catalogue has exactly the schema of a new one.
    fresh = tmp_path / "fresh.db"
    Catalogue(fresh).open()
    assert _schema(catalogue_path) == _schema(fresh)

    fsck = run_vmsd("fsck", "--config", str(config))
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "fsck: clean: 3 segment(s)" in fsck.stdout  # hash chain (through the tombstone) and audit chain verified

    again = run_vmsd("migrate", "--config", str(config))
    assert again.returncode == 0 and "ran:" not in again.stdout
    assert f"schema version {SCHEMA_VERSION}, this vmsd uses {SCHEMA_VERSION}" in again.stdout


def test_pre_autoincrement_schemas_are_the_ones_without_it() -> None:
    """The fixtures are what history says: AUTOINCREMENT arrived with commit 74abdfd."""
    for fixture in RELEASED_V1:
        has_it = "AUTOINCREMENT" in fixture.read_text()
        assert has_it == (fixture.stem.removeprefix("catalogue-v1-") not in PRE_AUTOINCREMENT), fixture.name


def test_a_new_catalogue_has_this_releases_schema(tmp_path: Path) -> None:
    fresh = tmp_path / "catalogue.db"
    Catalogue(fresh).open()
    frozen = tmp_path / "frozen.db"
    _from_fixture(frozen, SCHEMAS / f"catalogue-v{SCHEMA_VERSION}.sql", SCHEMA_VERSION)
    assert _schema(fresh) == _schema(frozen), "the schema changed: freeze a new version and add its migration"


def test_a_catalogue_newer_than_this_vmsd_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config = write_config(tmp_path / "vmsd.toml", root, {})
    _from_fixture(root / "catalogue.db", SCHEMAS / f"catalogue-v{SCHEMA_VERSION}.sql", SCHEMA_VERSION + 1)
    with pytest.raises(VmsdError) as refused:
        Catalogue(root / "catalogue.db").open()
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 1}, newer than version {SCHEMA_VERSION} that this vmsd" in message
    assert "restore the backup copy made before the upgrade" in message
    for command in (["run"], ["migrate", "--dry-run"], ["fsck"]):
        result = run_vmsd(command[0], "--config", str(config), *command[1:])
        assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (root / "backups").exists()


def test_the_backup_copy_opens_with_the_previous_schema(tmp_path: Path) -> None:
    """The roll-back path of docs/upgrading.md: the copy is a whole SQLite database at version 1."""
    root = tmp_path / "root"
    root.mkdir()
    _from_fixture(root / "catalogue.db", RELEASED_V1[0], 1)
    catalogue = Catalogue(root / "catalogue.db")
    catalogue.open()
    catalogue.close()
    assert catalogue.backup_path is not None
    conn = sqlite3.connect(catalogue.backup_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    finally:
        conn.close()


def test_a_version_2_catalogue_gains_the_events_table(tmp_path: Path) -> None:
    """Version 2 (the first release with migrations) to 3: its rows kept, the events table added,
    and the schema then exactly a new catalogue's."""
    root = tmp_path / "root"
    root.mkdir()
    db = root / "catalogue.db"
    _from_fixture(db, SCHEMAS / "catalogue-v2.sql", 2)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO cameras(id, name, location, first_seen_ns) VALUES ('cam', 'Gate', '', ?)", (T,))
    conn.execute("INSERT INTO gaps(camera_id, start_ns, reason) VALUES ('cam', ?, 'camera_offline')", (T,))
    conn.commit()
    conn.close()
    catalogue = Catalogue(db)
    catalogue.open()
    try:
        assert catalogue.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert catalogue.backup_path is not None and catalogue.backup_path.name.startswith("catalogue-v2-")
        assert [g.reason for g in catalogue.gaps("cam")] == [GapReason.CAMERA_OFFLINE]
        catalogue.insert_events([(1, T, "camera_connected", "cam", "{}")])
        assert [e.seq for e in catalogue.events_after(0, limit=10)] == [1]
    finally:
        catalogue.close()
    fresh = tmp_path / "fresh.db"
    Catalogue(fresh).open()
    assert _schema(db) == _schema(fresh)


def test_a_version_3_catalogue_gains_the_site_runs_table(tmp_path: Path) -> None:
    """Version 3 to 4 (and on): its runs kept (none of them a site run), site runs recorded with
    their epoch, and the schema then exactly a new catalogue's."""
    root = tmp_path / "root"
    root.mkdir()
    db = root / "catalogue.db"
    _from_fixture(db, SCHEMAS / "catalogue-v3.sql", 3)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO cameras(id, name, location, first_seen_ns) VALUES ('cam', 'Gate', '', ?)", (T,))
    conn.execute("INSERT INTO runs(camera_id, start_ns, end_ns, end_reason) VALUES ('cam', ?, ?, 'x')", (T, T + S))
    conn.commit()
    conn.close()
    catalogue = Catalogue(db)
    catalogue.open()
    try:
        assert catalogue.get_meta("schema_version") == str(SCHEMA_VERSION)
        assert catalogue.backup_path is not None and catalogue.backup_path.name.startswith("catalogue-v3-")
        assert catalogue.site_runs("cam") == []  # a lone recorder's run carries no epoch
        run_id = catalogue.begin_run("cam", T + 2 * S, epoch=17)
        assert catalogue.mark_runs_unfenced() == 1
        [run] = catalogue.site_runs("cam")
        assert (run.id, run.epoch, run.unfenced) == (run_id, 17, True)
    finally:
        catalogue.close()
    fresh = tmp_path / "fresh.db"
    Catalogue(fresh).open()
    assert _schema(db) == _schema(fresh)


def test_a_version_4_catalogue_gains_the_camera_clock_table(tmp_path: Path) -> None:
    """Version 4 to 5: rows kept, the camera_clock table added (the schema then a new
    catalogue's), and readings for a range come back with the one in force at its start."""
    root = tmp_path / "root"
    root.mkdir()
    db = root / "catalogue.db"
    _from_fixture(db, SCHEMAS / "catalogue-v4.sql", 4)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO cameras(id, name, location, first_seen_ns) VALUES ('cam', 'Gate', '', ?)", (T,))
    conn.commit()
    conn.close()
    catalogue = Catalogue(db)
    catalogue.open()
    try:
        assert catalogue.get_meta("schema_version") == "5"
        assert catalogue.backup_path is not None and catalogue.backup_path.name.startswith("catalogue-v4-")
        assert catalogue.camera_ids() == ["cam"]
        catalogue.add_camera_clock("cam", T, "ok", 3_000_000, "within 2.000 s")
        catalogue.add_camera_clock("cam", T + 60 * S, "offset", 30 * S, "30 s ahead")
        catalogue.add_camera_clock("cam", T + 120 * S, "unknown", None, "no report")
        catalogue.add_camera_clock("other", T + 61 * S, "ok", 0, "within")
        in_range = catalogue.camera_clock_in_range("cam", T + 30 * S, T + 90 * S)
        assert [(r.status, r.offset_ns) for r in in_range] == [("ok", 3_000_000), ("offset", 30 * S)]
        assert catalogue.camera_clock_in_range("cam", T - 10 * S, T - S) == []
    finally:
        catalogue.close()
    fresh = tmp_path / "fresh.db"
    Catalogue(fresh).open()
    assert _schema(db) == _schema(fresh)
