"""Fuzz the published OpenAPI with schemathesis against the real test engine: never a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.server.conftest import TOKEN

EXAMPLES_PER_OPERATION = 25


def test_no_server_errors(api):
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    fuzzed = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/shutdown":  # would end the fuzzing; tested in test_lifecycle
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case):
            case.call_and_validate(
                headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error], timeout=60
            )

        no_server_error()
        fuzzed.append(f"{operation.method.upper()} {operation.path}")
    assert len(fuzzed) >= 6, fuzzed
    status, _, health = api.call("GET", "/v1/health", token=None)
    assert status == 200 and health["status"] == "ok"
