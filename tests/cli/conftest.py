"""What the CLI tests share: the DynamoDB state table the acting commands (``--fix``, ``undo``, ``history``,
``pending``) need, on moto, named by ``SAFETYCATCH_TABLE``."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.store.state import table_definition

TABLE = "safetycatch-cli-state"


@pytest.fixture
def table(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    return TABLE
