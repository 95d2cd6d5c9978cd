"""What the kill-switch tests share (once, here): the DynamoDB state table a kill and its restore share between
runs, and a function's reserved concurrency as Lambda reports it.

* ``table``  a state table on moto named by ``SAFETYCATCH_TABLE``, with the repo's policies in ``SAFETYCATCH_POLICIES``
  (a kill stores its prior values there; ``restore`` and Undo read them back)
* :func:`reserved` ``ReservedConcurrentExecutions`` of one function (None when it has none)
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store.state import table_definition
from tests.conftest import POLICIES

TABLE = "safetycatch-killswitch-state"


@pytest.fixture
def table(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))
    return TABLE


def reserved(aws: Any, name: str) -> int | None:
    """The function's reserved concurrency (0 once killed), None when it has none."""
    return aws.client("lambda").get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
