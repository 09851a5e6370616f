-- Sites (time zone, calibrated meters), the site of each charge point, customer groups, and
-- tariff assignments per customer, group, charge point and site: the registry read model.
ALTER TABLE rm_charge_points ADD COLUMN site TEXT NOT NULL DEFAULT '';
ALTER TABLE rm_customers ADD COLUMN customer_group TEXT NOT NULL DEFAULT '';

CREATE TABLE rm_sites (
    code TEXT PRIMARY KEY,
    aggregate_id TEXT NOT NULL,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    calibrated INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE rm_tariff_assignments (
    scope TEXT NOT NULL,                  -- customer, group, charge-point, site
    scope_key TEXT NOT NULL,
    period INTEGER NOT NULL,                 -- 0, 1, ... in the order assigned
    tariff TEXT NOT NULL,
    valid_from TEXT,
    valid_until TEXT,
    position INTEGER NOT NULL,
    PRIMARY KEY (scope, scope_key, period)
);
CREATE INDEX rm_tariff_assignments_tariff ON rm_tariff_assignments (tariff);
