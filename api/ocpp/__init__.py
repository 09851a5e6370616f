"""The OCPP-J edge: handshake, framing, routing to ledger commands, evidence recording."""
