-- Tariffs and their versions, in the registry read model (projection "registry").
CREATE TABLE rm_tariffs (
    code text PRIMARY KEY,
    currency text NOT NULL,
    versions bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE TABLE rm_tariff_versions (
    code text NOT NULL,
    version bigint NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_until timestamptz,
    corrects bigint,
    superseded_by bigint,
    published_at timestamptz NOT NULL,
    published_by text NOT NULL,
    document text NOT NULL,
    PRIMARY KEY (code, version)
);
CREATE INDEX rm_tariffs_position ON rm_tariffs (position);
