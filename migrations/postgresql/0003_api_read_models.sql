-- Read models for the HTTP API: the registry (charge points, customers, id tags, API keys),
-- the charge point monitoring view, the quarantine, and a stable order for sessions.

-- Sessions are listed newest first by the position of their first event; the sessions read
-- model is emptied so that it is rebuilt with the new column.
DELETE FROM rm_session_evidence;
DELETE FROM rm_sessions;
DELETE FROM projection_tracking WHERE projection = 'sessions';
ALTER TABLE rm_sessions ADD COLUMN opened_position bigint NOT NULL DEFAULT 0;
CREATE INDEX rm_sessions_position ON rm_sessions (opened_position);
CREATE INDEX rm_sessions_token ON rm_sessions (id_token);

CREATE TABLE rm_charge_points (
    name text PRIMARY KEY,
    aggregate_id text NOT NULL UNIQUE,
    label text NOT NULL,
    location text NOT NULL,
    disabled boolean NOT NULL,
    has_password boolean NOT NULL,
    registered_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE rm_customers (
    customer_id text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    email text NOT NULL,
    billing_address text NOT NULL,      -- JSON object
    vat_id text NOT NULL,
    language text NOT NULL,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX rm_customers_position ON rm_customers (position);

CREATE TABLE rm_id_tags (
    tag_id text PRIMARY KEY,
    token text NOT NULL,
    kind text NOT NULL,
    label text NOT NULL,
    blocked boolean NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX rm_id_tags_token ON rm_id_tags (token);

-- Which customer an id tag belonged to when: a session is the customer's whose period covers
-- the session's start.
CREATE TABLE rm_tag_assignments (
    tag_id text NOT NULL,
    event_version bigint NOT NULL,
    token text NOT NULL,
    customer_id text NOT NULL,
    valid_from timestamptz,
    valid_until timestamptz,
    PRIMARY KEY (tag_id, event_version)
);
CREATE INDEX rm_tag_assignments_token ON rm_tag_assignments (token);
CREATE INDEX rm_tag_assignments_customer ON rm_tag_assignments (customer_id);

CREATE TABLE rm_api_keys (
    key_id text PRIMARY KEY,
    aggregate_id text NOT NULL UNIQUE,
    name text NOT NULL,
    role text NOT NULL,
    customer_id text,
    expires_at timestamptz,
    revoked boolean NOT NULL,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE rm_charge_point_status (
    log_id text PRIMARY KEY,
    charge_point text NOT NULL UNIQUE,
    protocol text,
    connection text,
    connected boolean NOT NULL,
    connected_at timestamptz,
    disconnected_at timestamptz,
    last_seen_at timestamptz,
    last_boot_at timestamptz,
    boot_reason text,
    vendor text,
    model text,
    serial_number text,
    firmware_version text,
    firmware_status text,
    last_heartbeat_at timestamptz,
    last_error text,
    last_error_at timestamptz,
    frames_in bigint NOT NULL,
    frames_out bigint NOT NULL,
    call_errors bigint NOT NULL
);

CREATE TABLE rm_connector_status (
    charge_point text NOT NULL,
    evse_id integer NOT NULL,
    connector_id integer NOT NULL,
    status text NOT NULL,
    error_code text,
    vendor_error_code text,
    info text,
    station_time text,                  -- as the station sent it
    received_at timestamptz NOT NULL,
    PRIMARY KEY (charge_point, evse_id, connector_id)
);

CREATE TABLE rm_quarantine (
    entry_id text PRIMARY KEY,
    charge_point text NOT NULL,
    action text NOT NULL,
    protocol text NOT NULL,
    message_id text NOT NULL,
    transaction_id text,
    reason text NOT NULL,
    frame_seq bigint NOT NULL,
    frame_hash text NOT NULL,
    quarantined_at timestamptz NOT NULL,
    resolved boolean NOT NULL,
    resolution text,
    note text,
    resolved_by text,
    resolved_at timestamptz,
    position bigint NOT NULL
);
CREATE INDEX rm_quarantine_position ON rm_quarantine (position);
