-- audit.db schema_version 1, frozen from src/vmsd/audit.py at commit 9cfae1c28278404c7370300cd4917b99463da285
-- (unchanged since: src/vmsd/storage/audit_db.py holds the same DDL). Do not edit.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, action TEXT NOT NULL, principal TEXT NOT NULL,
    role TEXT NOT NULL, peer TEXT NOT NULL, camera_id TEXT NOT NULL, start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL, reason TEXT NOT NULL, case_ref TEXT NOT NULL, outcome TEXT NOT NULL,
    detail_json TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ns);
CREATE INDEX IF NOT EXISTS audit_camera_time ON audit(camera_id, time_ns);
CREATE TABLE IF NOT EXISTS anchor (seq INTEGER NOT NULL, hash TEXT NOT NULL);
