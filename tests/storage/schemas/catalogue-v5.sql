-- catalogue.db schema_version 5 (issue #16): version 4 with the camera_clock table (storage/catalogue_migrations.py).
-- Do not edit: a released schema.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cameras (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    first_seen_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    end_reason TEXT
);
CREATE INDEX IF NOT EXISTS runs_camera_start ON runs(camera_id, start_ns);
CREATE TABLE IF NOT EXISTS segments (
    -- AUTOINCREMENT: recovery drops the row of a torn newest segment, and a plain rowid would hand
    -- its id to the next segment, so one id (in logs, fsck reports) would name two files.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    run_id INTEGER REFERENCES runs(id),
    state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'garbage')),
    path TEXT NOT NULL UNIQUE,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    bytes INTEGER,
    sha256 TEXT,
    prev_sha256 TEXT NOT NULL,
    video_codec TEXT NOT NULL DEFAULT '',
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    has_audio INTEGER NOT NULL DEFAULT 0,
    frames INTEGER
);
CREATE INDEX IF NOT EXISTS segments_camera_start ON segments(camera_id, start_ns);
CREATE INDEX IF NOT EXISTS segments_state ON segments(state) WHERE state != 'complete';
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL REFERENCES cameras(id),
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS gaps_camera_start ON gaps(camera_id, start_ns);
CREATE TABLE IF NOT EXISTS erased_segments (
    id INTEGER PRIMARY KEY,
    camera_id TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    erased_ns INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS erased_camera_start ON erased_segments(camera_id, start_ns);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start_ns);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    case_ref TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    until_ns INTEGER,
    released_ns INTEGER,
    released_by TEXT,
    release_reason TEXT
);
CREATE TABLE IF NOT EXISTS hold_cameras (
    hold_id INTEGER NOT NULL REFERENCES holds(id),
    camera_id TEXT NOT NULL,
    PRIMARY KEY (hold_id, camera_id)
);
CREATE TABLE IF NOT EXISTS api_cameras (
    id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS function_checks (
    id INTEGER PRIMARY KEY,
    started_ns INTEGER NOT NULL,
    finished_ns INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    verdict TEXT NOT NULL,
    report_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    -- Sequence numbers are handed out by the event bus (vmsd.events.bus), never reused.
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    camera_id TEXT NOT NULL DEFAULT '',
    fields_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
CREATE TABLE IF NOT EXISTS site_runs (
    -- Runs recorded as a member of a site ([site]): the ownership epoch (the etcd create revision
    -- of the camera's owner key) the run was recorded under, and whether any of it was recorded
    -- past this recorder's fencing deadline (unfenced: a peer may have recorded the same time).
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    unfenced INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS camera_clock (
    -- The camera's own clock against the recorder's, from its RTCP sender reports (native source):
    -- one row when the status changes and at most one a minute while it holds.
    camera_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'offset', 'stepped', 'unknown')),
    offset_ns INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS camera_clock_camera_time ON camera_clock(camera_id, time_ns);
