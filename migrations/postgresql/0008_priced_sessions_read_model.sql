-- Priced sessions (projection "pricing"): each session's current price record, the latest
-- SessionPrice.Priced/Unpriced; the history stays in the events. Amounts are the exact decimal
-- strings of the record (summed as Decimal by the API, never as floating point).
CREATE TABLE rm_priced_sessions (
    session_id text PRIMARY KEY,
    charge_point text NOT NULL,
    transaction_id text NOT NULL,
    customer_id text,
    site text,
    started_at timestamptz,
    ended_at timestamptz,
    status text NOT NULL,
    reason text,
    tariff_id text,
    tariff_version bigint,
    tariff_scope text,
    currency text,
    total_excl_vat text,
    total_incl_vat text,
    total_energy text,
    record_version bigint NOT NULL,
    replaces bigint,
    cause text NOT NULL,
    priced_by text NOT NULL,
    priced_at timestamptz NOT NULL,
    outcome text NOT NULL,
    first_position bigint NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX rm_priced_sessions_customer ON rm_priced_sessions (customer_id, ended_at);
CREATE INDEX rm_priced_sessions_ended ON rm_priced_sessions (ended_at);
CREATE INDEX rm_priced_sessions_tariff ON rm_priced_sessions (tariff_id, tariff_version);
CREATE INDEX rm_priced_sessions_first_position ON rm_priced_sessions (first_position);
