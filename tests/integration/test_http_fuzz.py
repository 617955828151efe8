"""The OpenAPI document against the real server: schemathesis makes requests from it (bounded:
a few examples per operation) and every answer must be no 5xx, a documented status, and a body
that matches the document's schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.harness import CLIENT_TOKEN, Cluster

# Examples per operation: about twenty operations, so a run stays around a minute.
EXAMPLES = 8
# Streams answer until a build ends; they are tested end to end in test_http_api. Webhooks take
# only signed bodies of a registered repository: test_repos drives them.
STREAMS = r"/(live|events)$|^/hooks/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("fuzz"))
    created.start_server()
    created.start_agent("fuzz-1")
    try:
        yield created
    finally:
        created.close()


def test_every_answer_matches_the_openapi_document(fuzzed: Cluster) -> None:
    base = f"http://{fuzzed.http_address}/api/v1"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json").exclude(path_regex=STREAMS)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document is usable
        operations.append(result.ok())
    assert len(operations) >= 15  # the document describes the API, not a stub of it

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=base,
                headers={"Authorization": f"Bearer {CLIENT_TOKEN}"},
                checks=CHECKS,
                timeout=30,
            )

        call()
