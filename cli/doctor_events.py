"""``safetycatch doctor`` lines about what the event path can see: environments the bot cannot read (a customer
managed KMS key it has no access to) and, per scope, the last CloudTrail event that reached the bot.

Example:
    items = event_path_items(checker)
    # -> [Item("encrypted-environments", "ok", "every function's environment is readable (12 functions)")]
"""

from __future__ import annotations

from typing import Any

from cli.doctor import Checker, Item

KMS_FIX = ("grant the bot's role kms:Decrypt on each key (key policy or grant), or accept that env-secrets reports "
           "these functions as 'cannot read: encrypted with a customer key'")


def event_path_items(checker: Checker) -> list[Item]:
    """The doctor lines of the event path, each guarded (an AWS error is ``cannot-check``, never ``ok``)."""
    return [checker.guarded("encrypted-environments", lambda: encrypted_environments(checker))]


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
