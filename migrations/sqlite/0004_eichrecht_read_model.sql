-- Per session: its signed records' verdicts, counted, and the latest Eichrecht assessment.
-- Built by the "eichrecht" projection from ChargingSession.RecordVerified, ClaimedKeyDiffers
-- and Assessed events; dropped and rebuilt by `ladebuch projections rebuild eichrecht`.
CREATE TABLE rm_session_eichrecht (
    session_id TEXT PRIMARY KEY,
    charge_point TEXT NOT NULL,
    records INTEGER NOT NULL,
    records_verified INTEGER NOT NULL,           -- against a registered key
    records_claimed_only INTEGER NOT NULL,       -- valid only against the station's own key
    records_invalid INTEGER NOT NULL,
    records_unsupported INTEGER NOT NULL,
    key_alerts INTEGER NOT NULL,
    assessed INTEGER NOT NULL,
    energy_billable INTEGER,
    energy TEXT,                              -- end - begin in the meter's own unit, exact
    unit TEXT,
    energy_wh TEXT,
    time_billable TEXT,                       -- wall-clock, duration or no
    meter TEXT,
    reasons TEXT,                             -- JSON list: why energy is not billable
    time_reasons TEXT,                        -- JSON list
    position INTEGER NOT NULL
);
CREATE INDEX rm_session_eichrecht_position ON rm_session_eichrecht (position);
