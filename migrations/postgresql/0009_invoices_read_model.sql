-- Issuers and invoices (projection "invoices", from the registry): drafts, issued invoices and
-- cancellations with their totals as printed (exact decimal strings), and the sessions of each.
CREATE TABLE rm_issuers (
    issuer_id text PRIMARY KEY,
    code text NOT NULL UNIQUE,
    name text NOT NULL,
    small_business boolean NOT NULL,
    time_zone text NOT NULL,
    document text NOT NULL,
    position bigint NOT NULL
);
CREATE TABLE rm_invoices (
    invoice_id text PRIMARY KEY,
    issuer text NOT NULL,
    customer_id text NOT NULL,
    kind text NOT NULL,
    state text NOT NULL,
    number text,
    period_start text NOT NULL,
    period_end text NOT NULL,
    issue_date text,
    currency text,
    total_net text,
    total_vat text,
    total_gross text,
    cancels text,
    cancelled_by text,
    sessions bigint NOT NULL,
    drafted_position bigint NOT NULL,
    position bigint NOT NULL
);
CREATE TABLE rm_invoice_sessions (
    invoice_id text NOT NULL,
    session_id text NOT NULL,
    PRIMARY KEY (invoice_id, session_id)
);
CREATE INDEX rm_invoices_customer ON rm_invoices (customer_id, drafted_position);
CREATE INDEX rm_invoices_position ON rm_invoices (drafted_position);
CREATE INDEX rm_invoice_sessions_session ON rm_invoice_sessions (session_id);
