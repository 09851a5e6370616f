"""Property-based tests of the HTTP API against its own OpenAPI document (schemathesis).

Every operation gets generated valid and invalid requests, with an admin key, against a real
server process. No answer may be a 5xx, and every answer must match the documented status
codes, content types and schemas; invalid requests must be refused with a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api.app import create_api
from api.settings import Settings
from ledger.store import Database, migrate
from tests.conftest import Server, run_cli


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    directory: Path = tmp_path_factory.mktemp("schema")
    database = Database.from_url(f"sqlite:///{directory / 'ladebuch.sqlite3'}")
    migrate(database)
    token = run_cli(database, "keys", "create", "--role", "admin").stdout.strip()
    server = Server(database, directory / "server.log")
    try:
        yield server, token
    finally:
        server.stop()


# The document is built without a server (no lifespan needed), so the operations are known
# when pytest collects; every generated request then goes to the live server.
schema = schemathesis.openapi.from_dict(create_api(Settings()).openapi())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case: Any, live: tuple[Server, str]) -> None:
    server, token = live
    if not schema.is_security_param_negated(case):
        # Our key, except where the case is about a missing or wrong key (then it must be 401).
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    case.call_and_validate(
        base_url=server.base_url,
        checks=[checks.not_a_server_error, checks.status_code_conformance,
                checks.content_type_conformance, checks.response_schema_conformance,
                checks.negative_data_rejection],
    )
    assert "Traceback" not in server.log_path.read_text()
