-- Per session: its signed records' verdicts, counted, and the latest Eichrecht assessment.
-- Built by the "eichrecht" projection from ChargingSession.RecordVerified, ClaimedKeyDiffers
-- and Assessed events; dropped and rebuilt by `ladebuch projections rebuild eichrecht`.
CREATE TABLE rm_session_eichrecht (
    session_id text PRIMARY KEY,
    charge_point text NOT NULL,
    records bigint NOT NULL,
    records_verified bigint NOT NULL,           -- against a registered key
    records_claimed_only bigint NOT NULL,       -- valid only against the station's own key
    records_invalid bigint NOT NULL,
    records_unsupported bigint NOT NULL,
    key_alerts bigint NOT NULL,
    assessed boolean NOT NULL,
    energy_billable boolean,
    energy text,                              -- end - begin in the meter's own unit, exact
    unit text,
    energy_wh text,
    time_billable text,                       -- wall-clock, duration or no
    meter text,
    reasons text,                             -- JSON list: why energy is not billable
    time_reasons text,                        -- JSON list
    position bigint NOT NULL
);
CREATE INDEX rm_session_eichrecht_position ON rm_session_eichrecht (position);
