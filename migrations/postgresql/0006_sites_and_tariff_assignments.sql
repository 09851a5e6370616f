-- Sites (time zone, calibrated meters), the site of each charge point, customer groups, and
-- tariff assignments per customer, group, charge point and site: the registry read model.
ALTER TABLE rm_charge_points ADD COLUMN site text NOT NULL DEFAULT '';
ALTER TABLE rm_customers ADD COLUMN customer_group text NOT NULL DEFAULT '';

CREATE TABLE rm_sites (
    code text PRIMARY KEY,
    aggregate_id text NOT NULL,
    name text NOT NULL,
    time_zone text NOT NULL,
    calibrated boolean NOT NULL,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE rm_tariff_assignments (
    scope text NOT NULL,                  -- customer, group, charge-point, site
    scope_key text NOT NULL,
    period bigint NOT NULL,                 -- 0, 1, ... in the order assigned
    tariff text NOT NULL,
    valid_from timestamptz,
    valid_until timestamptz,
    position bigint NOT NULL,
    PRIMARY KEY (scope, scope_key, period)
);
CREATE INDEX rm_tariff_assignments_tariff ON rm_tariff_assignments (tariff);
