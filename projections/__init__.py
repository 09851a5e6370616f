"""Read models built from the event store, each rebuildable from event 0.

`runner.Runner` pulls an application's notification log into a `view.View` (tables owned by
`migrations/`, written in one transaction with their tracking record). `build_runners` lists
every projection the server keeps up to date:

- `sessions`: charging sessions and the evidence index (ledger);
- `monitoring`: charge point connection, boot, heartbeat and connector status (ledger frames);
- `quarantine`: messages kept but not applied, and their resolution (ledger);
- `eichrecht`: per session, its signed records' verdicts counted and the latest assessment (ledger);
- `pricing`: per session, its current price record (ledger; written by `invoices.pricer`);
- `invoices`: issuers, invoices (drafts, issued, cancelled, cancellations) and their sessions (registry);
- `registry`: charge points, customers, id tags and their periods, API keys (registry).
"""

from __future__ import annotations

from ledger.application import Ledger, Registry
from ledger.store import Database
from projections import eichrecht, invoices, monitoring, pricing, quarantine, registry, sessions
from projections.runner import Runner


def build_runners(database: Database, ledger: Ledger, registry_app: Registry) -> dict[str, Runner]:
    return {
        sessions.NAME: Runner(
            sessions.NAME, ledger, sessions.SessionsView(database), sessions.TOPICS, sessions.apply
        ),
        monitoring.NAME: Runner(
            monitoring.NAME, ledger, monitoring.MonitoringView(database), monitoring.TOPICS,
            monitoring.apply,
        ),
        quarantine.NAME: Runner(
            quarantine.NAME, ledger, quarantine.QuarantineView(database), quarantine.TOPICS,
            quarantine.apply,
        ),
        eichrecht.NAME: Runner(
            eichrecht.NAME, ledger, eichrecht.EichrechtView(database), eichrecht.TOPICS,
            eichrecht.apply,
        ),
        pricing.NAME: Runner(
            pricing.NAME, ledger, pricing.PricingView(database), pricing.TOPICS, pricing.apply
        ),
        invoices.NAME: Runner(
            invoices.NAME, registry_app, invoices.InvoicesView(database), invoices.TOPICS,
            invoices.apply,
        ),
        registry.NAME: Runner(
            registry.NAME, registry_app, registry.RegistryView(database), registry.TOPICS,
            registry.apply,
        ),
    }
