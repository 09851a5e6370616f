"""Read models built from the event store (sessions, charge point status, evidence index).

Empty until the read-model issue lands; see docs/ARCHITECTURE.md.
"""
