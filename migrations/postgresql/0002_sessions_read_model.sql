-- Read models (projections/). Rebuilt from the events at will; never evidence themselves.

-- How far each projection has applied the ledger's notification log (eventsourcing tracking).
CREATE TABLE projection_tracking (
    projection text PRIMARY KEY,
    notification_id bigint NOT NULL
);

CREATE TABLE rm_sessions (
    session_id text PRIMARY KEY,
    charge_point text NOT NULL,
    protocol text NOT NULL,
    transaction_id text NOT NULL,
    state text NOT NULL,                 -- opened (events before Started), active, ended
    connector_id integer,
    evse_id integer,
    id_token text,
    id_token_type text,
    authorization_status text,
    started_at timestamptz,              -- the station's time
    ended_at timestamptz,
    meter_start_wh text,                 -- exact decimals as text
    meter_stop_wh text,
    energy_wh text,
    stop_reason text,
    readings integer NOT NULL,
    after_end_readings integer NOT NULL,
    events bigint NOT NULL
);
CREATE INDEX rm_sessions_charge_point ON rm_sessions (charge_point, started_at);
CREATE INDEX rm_sessions_started ON rm_sessions (started_at);

-- The evidence index: for each session event, the frame it came from, in order.
CREATE TABLE rm_session_evidence (
    session_id text NOT NULL,
    event_version bigint NOT NULL,
    kind text NOT NULL,
    charge_point text NOT NULL,
    frame_seq bigint NOT NULL,
    frame_hash text NOT NULL,
    after_end boolean NOT NULL,
    PRIMARY KEY (session_id, event_version)
);
