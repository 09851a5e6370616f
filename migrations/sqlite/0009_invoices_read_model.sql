-- Issuers and invoices (projection "invoices", from the registry): drafts, issued invoices and
-- cancellations with their totals as printed (exact decimal strings), and the sessions of each.
CREATE TABLE rm_issuers (
    issuer_id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    small_business INTEGER NOT NULL,
    time_zone TEXT NOT NULL,
    document TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE rm_invoices (
    invoice_id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    number TEXT,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    issue_date TEXT,
    currency TEXT,
    total_net TEXT,
    total_vat TEXT,
    total_gross TEXT,
    cancels TEXT,
    cancelled_by TEXT,
    sessions INTEGER NOT NULL,
    drafted_position INTEGER NOT NULL,
    position INTEGER NOT NULL
);
CREATE TABLE rm_invoice_sessions (
    invoice_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (invoice_id, session_id)
);
CREATE INDEX rm_invoices_customer ON rm_invoices (customer_id, drafted_position);
CREATE INDEX rm_invoices_position ON rm_invoices (drafted_position);
CREATE INDEX rm_invoice_sessions_session ON rm_invoice_sessions (session_id);
