-- Read models for the HTTP API: the registry (charge points, customers, id tags, API keys),
-- the charge point monitoring view, the quarantine, and a stable order for sessions.

-- Sessions are listed newest first by the position of their first event; the sessions read
-- model is emptied so that it is rebuilt with the new column.
DELETE FROM rm_session_evidence;
DELETE FROM rm_sessions;
DELETE FROM projection_tracking WHERE projection = 'sessions';
ALTER TABLE rm_sessions ADD COLUMN opened_position INTEGER NOT NULL DEFAULT 0;
CREATE INDEX rm_sessions_position ON rm_sessions (opened_position);
CREATE INDEX rm_sessions_token ON rm_sessions (id_token);

CREATE TABLE rm_charge_points (
    name TEXT PRIMARY KEY,
    aggregate_id TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    location TEXT NOT NULL,
    disabled INTEGER NOT NULL,
    has_password INTEGER NOT NULL,
    registered_at TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE rm_customers (
    customer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    email TEXT NOT NULL,
    billing_address TEXT NOT NULL,      -- JSON object
    vat_id TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX rm_customers_position ON rm_customers (position);

CREATE TABLE rm_id_tags (
    tag_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    blocked INTEGER NOT NULL,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX rm_id_tags_token ON rm_id_tags (token);

-- Which customer an id tag belonged to when: a session is the customer's whose period covers
-- the session's start.
CREATE TABLE rm_tag_assignments (
    tag_id TEXT NOT NULL,
    event_version INTEGER NOT NULL,
    token TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    PRIMARY KEY (tag_id, event_version)
);
CREATE INDEX rm_tag_assignments_token ON rm_tag_assignments (token);
CREATE INDEX rm_tag_assignments_customer ON rm_tag_assignments (customer_id);

CREATE TABLE rm_api_keys (
    key_id TEXT PRIMARY KEY,
    aggregate_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    customer_id TEXT,
    expires_at TEXT,
    revoked INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE rm_charge_point_status (
    log_id TEXT PRIMARY KEY,
    charge_point TEXT NOT NULL UNIQUE,
    protocol TEXT,
    connection TEXT,
    connected INTEGER NOT NULL,
    connected_at TEXT,
    disconnected_at TEXT,
    last_seen_at TEXT,
    last_boot_at TEXT,
    boot_reason TEXT,
    vendor TEXT,
    model TEXT,
    serial_number TEXT,
    firmware_version TEXT,
    firmware_status TEXT,
    last_heartbeat_at TEXT,
    last_error TEXT,
    last_error_at TEXT,
    frames_in INTEGER NOT NULL,
    frames_out INTEGER NOT NULL,
    call_errors INTEGER NOT NULL
);

CREATE TABLE rm_connector_status (
    charge_point TEXT NOT NULL,
    evse_id INTEGER NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_code TEXT,
    vendor_error_code TEXT,
    info TEXT,
    station_time TEXT,                  -- as the station sent it
    received_at TEXT NOT NULL,
    PRIMARY KEY (charge_point, evse_id, connector_id)
);

CREATE TABLE rm_quarantine (
    entry_id TEXT PRIMARY KEY,
    charge_point TEXT NOT NULL,
    action TEXT NOT NULL,
    protocol TEXT NOT NULL,
    message_id TEXT NOT NULL,
    transaction_id TEXT,
    reason TEXT NOT NULL,
    frame_seq INTEGER NOT NULL,
    frame_hash TEXT NOT NULL,
    quarantined_at TEXT NOT NULL,
    resolved INTEGER NOT NULL,
    resolution TEXT,
    note TEXT,
    resolved_by TEXT,
    resolved_at TEXT,
    position INTEGER NOT NULL
);
CREATE INDEX rm_quarantine_position ON rm_quarantine (position);
