-- Tariffs and their versions, in the registry read model (projection "registry").
CREATE TABLE rm_tariffs (
    code TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    versions INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE rm_tariff_versions (
    code TEXT NOT NULL,
    version INTEGER NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    corrects INTEGER,
    superseded_by INTEGER,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (code, version)
);
CREATE INDEX rm_tariffs_position ON rm_tariffs (position);
