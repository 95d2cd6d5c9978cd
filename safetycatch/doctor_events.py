"""``safetycatch doctor`` lines about what the event path can see: environments the bot cannot read (a customer
managed KMS key it has no access to) and, per scope, the last CloudTrail event that reached the bot.

Example:
    items = event_path_items(checker)
    # -> [Item("encrypted-environments", "ok", "every function's environment is readable (12 functions)")]
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code
from chalicelib.intake import heartbeat
from safetycatch.doctor import Checker, Item

KMS_FIX = ("grant the bot's role kms:Decrypt on each key (key policy or grant), or accept that env-secrets reports "
           "these functions as 'cannot read: encrypted with a customer key'")


def event_path_items(checker: Checker) -> list[Item]:
    """The doctor lines of the event path, each guarded (an AWS error is ``cannot-check``, never ``ok``)."""
    items = [checker.guarded("encrypted-environments", lambda: encrypted_environments(checker))]
    try:
        return items + last_event_items(checker)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return items  # no table: the state-table line says so
        return items + [Item("last-event", "cannot-check", f"the state table could not be read ({error_code(exc)})")]


def last_event_items(checker: Checker, now: float | None = None) -> list[Item]:
    """One line per scope: the last CloudTrail event that reached the bot (the state table's heartbeats), and when.
    No heartbeat at all: no event has reached the bot yet (``cannot-check``, with what to look at)."""
    response = checker.client("dynamodb").query(
        TableName=checker.target.table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": heartbeat.PK}})
    rows = [{k: TypeDeserializer().deserialize(v) for k, v in raw.items()} for raw in response.get("Items", [])]
    if not rows:
        return [Item("last-event", "cannot-check", "no CloudTrail event has reached the bot yet",
                     "make a change (tag a function) and check the trail, the rules above and the members' forwarding")]
    now = time.time() if now is None else now
    return [_last_event(row, now) for row in sorted(rows, key=lambda r: str(r.get("sk")))]


def _last_event(row: dict[str, Any], now: float) -> Item:
    seen = float(row.get("seen") or 0)
    scope = f"{row.get('account', '')}/{row.get('region', '')}"
    ago = f"{(now - seen) / 3600:.1f} h ago"
    if not row.get("event_name"):
        return Item(f"last-event:{scope}", "cannot-check", f"no event since the bot started watching at "
                    f"{heartbeat.iso(seen)} ({ago})", "check the trail / rule if functions changed since")
    return Item(f"last-event:{scope}", "ok", f"{row['event_name']} at {heartbeat.iso(seen)} ({ago})")


def encrypted_environments(checker: Checker) -> Item:
    """How many functions answer ``Environment.Error`` to these credentials (ListFunctions, every page)."""
    pages = checker.client("lambda").get_paginator("list_functions").paginate()
    functions = [f for page in pages for f in page.get("Functions", [])]
    unread = sorted(str(f.get("FunctionName", "")) for f in functions if _env_error(f))
    if not unread:
        return Item("encrypted-environments", "ok",
                    f"every function's environment is readable ({len(functions)} functions)")
    shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
    return Item("encrypted-environments", "cannot-check",
                f"{len(unread)} of {len(functions)} functions' environments cannot be read: encrypted with a "
                f"customer key ({shown})", KMS_FIX)


def _env_error(config: dict[str, Any]) -> bool:
    return isinstance((config.get("Environment") or {}).get("Error"), dict)
