-- catalogue.db schema_version 1, frozen from src/vmsd/storage/catalogue.py at commit 3a141da6c365115e9e5f7c5689bdbb845d2ea686
-- (Camera simulator, end-to-end recording tests, demo, docs; robust timing under bursts)
-- Do not edit: a released schema that migrations must upgrade.
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
    id INTEGER PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS api_cameras (
    id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    updated_ns INTEGER NOT NULL
);
