"""Act once per event: Powertools Idempotency keyed on the CloudTrail eventID.

EventBridge delivers at least once, and retries failed invocations; the same CloudTrail event may arrive
twice. The deployed bot keeps idempotency records in the state table; a CLI run without a table (and any
dry-run, which must write nothing) keeps them in memory with the same semantics.

Example:
    >>> once = Deduplicator(None)
    >>> once.run({"detail": {"eventID": "e1"}}, lambda event: {"acted": True})
    {'acted': True}
    >>> once.run({"detail": {"eventID": "e1"}}, lambda event: {"acted": True})["duplicate"]
    True
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from chalicelib.core.aws import RETRY_CONFIG
from chalicelib.intake.events import event_id

EXPIRES_AFTER_SECONDS = 24 * 3600  # EventBridge retries an async invocation for up to 24 hours
# One key space for every handler and for the CLI: Powertools would otherwise prefix each key with the Lambda
# function's name ("safetycatch-prod-on_config_change.once#..."), and ``safetycatch redrive`` (run outside
# Lambda) would not see the records of the event handlers whose failed events it replays.
KEY_PREFIX = "safetycatch.events"

# Outside Lambda (CLI, tests) there is no context to take the remaining time from; that is expected.
warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")


class MemoryPersistenceLayer(BasePersistenceLayer):
    """Powertools idempotency records in a dict (one process, one run)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        now = dt.datetime.now()
        with self._lock:
            existing = self.records.get(data_record.idempotency_key)
            if existing and not existing.is_expired:
                stale = (existing.status == "INPROGRESS" and existing.in_progress_expiry_timestamp is not None
                         and existing.in_progress_expiry_timestamp < int(now.timestamp() * 1000))
                if not stale:
                    raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    if isinstance(response, dict):
        response = {**response, "duplicate": True}
    return response


class Deduplicator:
    """Runs a handler at most once per event id; a repeat gets the first result with ``duplicate: True``."""

    def __init__(self, table_name: str | None, boto3_session: Any = None) -> None:
        self.persistence: BasePersistenceLayer = (
            DynamoDBPersistenceLayer(table_name=table_name, key_attr="pk", sort_key_attr="sk",
                                     static_pk_value="idempotency#events", boto_config=RETRY_CONFIG,
                                     boto3_session=boto3_session)
            if table_name else MemoryPersistenceLayer())
        self.config = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=EXPIRES_AFTER_SECONDS,
                                        response_hook=_mark_duplicate)

    def register_context(self, context: Any) -> None:
        """Pass the Lambda context so an interrupted invocation's lock expires with it."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self.config.register_lambda_context(context)

    def run(self, event: dict[str, Any], handler: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """``handler(event)`` once per event id; events without an id always run."""

        @idempotent_function(data_keyword_argument="data", persistence_store=self.persistence, config=self.config,
                             key_prefix=KEY_PREFIX)
        def once(data: dict[str, Any]) -> dict[str, Any]:
            return handler(data["event"])

        key = event_id(event)
        if not key:
            return handler(event)
        try:
            return once(data={"event_id": key, "event": event})
        except IdempotencyAlreadyInProgressError:
            return {"event_id": key, "skipped": "duplicate delivery still in progress", "duplicate": True,
                    "findings": []}
