"""The HTTP API under /v1: one router per resource, problem+json errors, bearer API keys."""
