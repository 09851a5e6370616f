-- Read models (projections/). Rebuilt from the events at will; never evidence themselves.

-- How far each projection has applied the ledger's notification log (eventsourcing tracking).
CREATE TABLE projection_tracking (
    projection TEXT PRIMARY KEY,
    notification_id INTEGER NOT NULL
);

CREATE TABLE rm_sessions (
    session_id TEXT PRIMARY KEY,
    charge_point TEXT NOT NULL,
    protocol TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    state TEXT NOT NULL,                 -- opened (events before Started), active, ended
    connector_id INTEGER,
    evse_id INTEGER,
    id_token TEXT,
    id_token_type TEXT,
    authorization_status TEXT,
    started_at TEXT,                     -- UTC, ISO 8601, the station's time
    ended_at TEXT,
    meter_start_wh TEXT,                 -- exact decimals as text
    meter_stop_wh TEXT,
    energy_wh TEXT,
    stop_reason TEXT,
    readings INTEGER NOT NULL,
    after_end_readings INTEGER NOT NULL,
    events INTEGER NOT NULL
);
CREATE INDEX rm_sessions_charge_point ON rm_sessions (charge_point, started_at);
CREATE INDEX rm_sessions_started ON rm_sessions (started_at);

-- The evidence index: for each session event, the frame it came from, in order.
CREATE TABLE rm_session_evidence (
    session_id TEXT NOT NULL,
    event_version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    charge_point TEXT NOT NULL,
    frame_seq INTEGER NOT NULL,
    frame_hash TEXT NOT NULL,
    after_end INTEGER NOT NULL,
    PRIMARY KEY (session_id, event_version)
);
