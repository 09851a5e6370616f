-- Priced sessions (projection "pricing"): each session's current price record, the latest
-- SessionPrice.Priced/Unpriced; the history stays in the events. Amounts are the exact decimal
-- strings of the record (summed as Decimal by the API, never as floating point).
CREATE TABLE rm_priced_sessions (
    session_id TEXT PRIMARY KEY,
    charge_point TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    customer_id TEXT,
    site TEXT,
    started_at TEXT,
    ended_at TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    tariff_id TEXT,
    tariff_version INTEGER,
    tariff_scope TEXT,
    currency TEXT,
    total_excl_vat TEXT,
    total_incl_vat TEXT,
    total_energy TEXT,
    record_version INTEGER NOT NULL,
    replaces INTEGER,
    cause TEXT NOT NULL,
    priced_by TEXT NOT NULL,
    priced_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    first_position INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX rm_priced_sessions_customer ON rm_priced_sessions (customer_id, ended_at);
CREATE INDEX rm_priced_sessions_ended ON rm_priced_sessions (ended_at);
CREATE INDEX rm_priced_sessions_tariff ON rm_priced_sessions (tariff_id, tariff_version);
CREATE INDEX rm_priced_sessions_first_position ON rm_priced_sessions (first_position);
