-- The event store of the two eventsourcing applications, in the layout of eventsourcing 9.5's
-- SQLite recorder (notification ids are the rowids), and the OCPP 1.6 transaction id allocator.

CREATE TABLE registry_events (
    originator_id TEXT,
    originator_version INTEGER,
    topic TEXT,
    state BLOB,
    PRIMARY KEY (originator_id, originator_version)
);

CREATE TABLE ledger_events (
    originator_id TEXT,
    originator_version INTEGER,
    topic TEXT,
    state BLOB,
    PRIMARY KEY (originator_id, originator_version)
);

-- Append-only, as far as SQLite can say it: the application never updates or deletes events,
-- and these triggers refuse it from any other client that does not drop them first.
CREATE TRIGGER registry_events_no_update BEFORE UPDATE ON registry_events
BEGIN SELECT RAISE(ABORT, 'registry_events is append-only'); END;
CREATE TRIGGER registry_events_no_delete BEFORE DELETE ON registry_events
BEGIN SELECT RAISE(ABORT, 'registry_events is append-only'); END;
CREATE TRIGGER ledger_events_no_update BEFORE UPDATE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger_events is append-only'); END;
CREATE TRIGGER ledger_events_no_delete BEFORE DELETE ON ledger_events
BEGIN SELECT RAISE(ABORT, 'ledger_events is append-only'); END;

-- OCPP 1.6 StartTransaction needs an integer transactionId from us. One row per start, keyed by
-- what identifies a start (charge point, connector, id tag, timestamp, meter start), so a
-- repeated StartTransaction gets the same id back.
CREATE TABLE ocpp16_transaction_ids (
    transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
    start_key TEXT NOT NULL UNIQUE,
    charge_point TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
