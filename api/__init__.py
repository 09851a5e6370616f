"""The composition root: settings, the OCPP WebSocket endpoint, the HTTP API and the CLI."""
