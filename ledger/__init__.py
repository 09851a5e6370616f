"""The write model: aggregates, events, value types and the event store.

`ledger` imports nothing from the other Ladebuch packages and does no network I/O.
"""
