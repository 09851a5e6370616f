-- The files of issued invoices (PDF, e-invoice XML, evidence bundle) as first rendered: later
-- downloads serve these bytes, whatever library versions run by then. Written once per file.
CREATE TABLE invoice_files (
    invoice_id text NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    media_type text NOT NULL,
    sha256 text NOT NULL,
    content bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, kind)
);

-- A customer's buyer reference (EN 16931 BT-10; the Leitweg-ID of a public-sector buyer),
-- printed on their invoices and required for XRechnung.
ALTER TABLE rm_customers ADD COLUMN buyer_reference TEXT NOT NULL DEFAULT '';
