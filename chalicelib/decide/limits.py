"""Bounds on automatic writes: hourly caps per function, per policy and per account, and no fights.

* Caps (``settings.yaml``): ``max_changes_per_function_per_hour``, ``max_changes_per_policy_per_hour`` and
  ``max_changes_per_hour`` (per account), each an atomic counter per clock hour in the state table. A fight on
  one function or one policy gone wrong cannot spend the account's hour: other fixes still happen. Only
  automatic changes count: a fix a human approved is never refused by them.
* Share: an automatic reservation takes at most ``max_auto_reservation_share`` of the account concurrency
  limit; a larger one waits for a human (tagging a function ``critical`` must not drain the pool by itself).
* Total: the bot's automatic reservations in one account and region add up to at most
  ``max_auto_reservation_total_share`` of the limit (nine ``critical`` functions must not reserve 891 of 1,000
  one by one). Each automatic reservation is kept in a ledger in the state table (one item per function, its
  value; undo sets it to 0) beside their sum, claimed atomically before the write (two instances fixing two
  functions at once cannot both pass) and given back when the fix is not made; beyond the bound, approval.
* Fights: when the same fix (policy, action and values) was already applied to the same function more than
  ``max_reapply`` times within ``fight_window_hours``, something keeps undoing it (a deploy, a pipeline, a
  person). Re-applying forever helps nobody: the bot stops, names who keeps reverting it (the CloudTrail
  identity of each round; for a CloudFormation-managed function, the stack and logical id: the template is the
  place to fix it) and waits for a human (an approval request, posted once).

Example:
    reason = take_slots(store, settings, "123456789012", finding)
    reason or "slots taken"
    # -> 'slots taken'
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from chalicelib.core.model import Finding, FunctionRef, FunctionSnapshot
from chalicelib.policy.settings import Settings
from chalicelib.store.state import StateStore

STACK_TAG, LOGICAL_ID_TAG = "aws:cloudformation:stack-name", "aws:cloudformation:logical-id"
TOTAL = "#total"  # the ledger item holding the sum of its entries
CLAIM_ATTEMPTS = 3  # conditional writes lost to a concurrent claim before the fix waits for a human
WAS_APPLIED = ("applied", "undoing", "undone", "undo-failed", "superseded")  # statuses of fixes that were made


def take_slots(store: StateStore, settings: Settings, account: str, finding: Finding) -> str:
    """Count one automatic change against the function's, the policy's and the account's hourly caps, narrowest
    first; '' when all three had room, else why not (the change must not be made)."""
    caps = (("changes-function", finding.function_arn, settings.max_changes_per_function_per_hour,
             f"{settings.max_changes_per_function_per_hour} changes per hour on this function"),
            ("changes-policy", f"{account}#{finding.policy}", settings.max_changes_per_policy_per_hour,
             f"{settings.max_changes_per_policy_per_hour} {finding.policy} changes per hour in account {account}"),
            ("changes", account, settings.max_changes_per_hour,
             f"{settings.max_changes_per_hour} changes per hour in account {account}"))
    for kind, key, limit, what in caps:
        if not store.take_change_slot(key, limit, kind=kind):
            return f"not applied: blast-radius cap of {what} reached; notify only until the hour turns"
    return ""


def fight(store: StateStore, settings: Settings, snapshot: FunctionSnapshot, finding: Finding, actor: str) -> str:
    """'' when ``finding``'s fix may be applied again; else the message that stops the fight (who reverts it)."""
    assert finding.fix is not None
    spec = finding.fix.to_json()
    since = datetime.fromtimestamp(store.clock() - settings.fight_window_hours * 3600, timezone.utc).isoformat(
        timespec="milliseconds")
    same = [f for f in store.fixes_for(snapshot.arn)
            if f.get("policy") == finding.policy and f.get("status") in WAS_APPLIED
            and str(f.get("created_at", "")) >= since and _same_fix(f.get("spec") or {}, spec)]
    if len(same) <= settings.max_reapply:
        return ""
    who = _distinct([actor, *(str(f.get("trigger", "")) for f in same)])
    hours = f"{settings.fight_window_hours:g} h"
    message = (f"Fight stopped: safetycatch already applied {spec['action']} {spec['params']} {len(same)} times in "
               f"{hours} and something keeps putting it back ({', '.join(who) or 'unknown: found by the sweep'}). "
               "Not applied again: approve to apply it once more, or fix it where it comes from.")
    stack = snapshot.tags.get(STACK_TAG)
    if stack:
        logical = snapshot.tags.get(LOGICAL_ID_TAG, "?")
        message += f" It belongs to CloudFormation stack {stack} (resource {logical}): change the template."
    return message


def over_automatic_bound(settings: Settings, finding: Finding) -> str:
    """'' when ``finding``'s fix may be applied without a human; else why a human must approve it. A reservation
    larger than ``max_auto_reservation_share`` of the account concurrency limit (the check's evidence
    ``account_limit``) takes slots every other function may need: a tag alone must not buy that."""
    fix = finding.fix
    value = fix.params.get("ReservedConcurrentExecutions") if fix and fix.action == "set-reserved-concurrency" else None
    limit = finding.evidence.get("account_limit")
    if not isinstance(value, int) or not isinstance(limit, int) or limit <= 0:
        return ""
    bound = math.floor(settings.max_auto_reservation_share * limit)
    if value <= bound:
        return ""
    return (f"Reserving {value} is more than max_auto_reservation_share {settings.max_auto_reservation_share:g} of "
            f"the account limit {limit} ({bound}): it waits for a human.")


def claim_reservation(store: StateStore, settings: Settings, finding: Finding) -> tuple[str, int | None]:
    """Claim ``finding``'s automatic reservation in the ledger of its account and region, atomically: ('', the
    function's previous ledger value, to give back with :func:`record_reservation` if the fix is not made) when
    the sum stays within ``max_auto_reservation_total_share`` of the account limit; else (why a human must
    approve it, with how much is already reserved automatically; ``None``). ('', ``None``) for any other fix.

    Two instances fixing two functions at once both read the sum before either writes: the claim is a
    conditional update of the per-account-region total (``StateStore.table.move_amount``), so one of them waits.
    A retry claims nothing twice (the function's own value is replaced, not added).

    Example:
        note, held = claim_reservation(store, settings, finding)  # -> ('', 0)
    """
    fix = finding.fix
    value = fix.params.get("ReservedConcurrentExecutions") if fix and fix.action == "set-reserved-concurrency" else None
    limit = finding.evidence.get("account_limit")
    ref = FunctionRef.parse(finding.function_arn, "", "")
    if not isinstance(value, int) or not isinstance(limit, int) or limit <= 0 or ref is None:
        return "", None
    bound = math.floor(settings.max_auto_reservation_total_share * limit)
    for _ in range(CLAIM_ATTEMPTS):
        total, own = _ledger_state(store, ref)
        if total - own + value > bound:
            return (f"{total - own} already reserved automatically in {ref.account} {ref.region}; reserving {value} "
                    f"more would pass max_auto_reservation_total_share {settings.max_auto_reservation_total_share:g} "
                    f"of the account limit {limit} ({bound}): it waits for a human."), None
        if store.table.move_amount(_entry(ref, value), own, TOTAL, bound):
            return "", own
    return f"The automatic reservations of {ref.account} {ref.region} kept changing: it waits for a human.", None


def record_reservation(store: StateStore, function_arn: str, value: int) -> None:
    """Set the function's automatic reservation in the ledger of its account and region (0: none any more; undo
    gives its share back), the total moved with it; never refused by the bound (it gives back or restores)."""
    ref = FunctionRef.parse(function_arn, "", "")
    if ref is None:
        return
    for _ in range(CLAIM_ATTEMPTS):
        _, own = _ledger_state(store, ref)
        if own == value or store.table.move_amount(_entry(ref, value), own, TOTAL, None):
            return


def _ledger_state(store: StateStore, ref: FunctionRef) -> tuple[int, int]:
    """(the total of the ledger, the function's own value); the total item is made from the entries when absent."""
    pk = _ledger(ref)
    total = store.table.get(pk, TOTAL)
    if total is None:
        entries = [i for i in store.table.query_pk(pk) if i.get("sk") != TOTAL]
        store.table.put_new({"pk": pk, "sk": TOTAL, "kind": "auto-reservation-total",
                             "total": sum(int(i.get("value", 0)) for i in entries)})
        total = store.table.get(pk, TOTAL) or {}
    own = store.table.get(pk, ref.arn) or {}
    return int(total.get("total", 0)), int(own.get("value", 0))


def _entry(ref: FunctionRef, value: int) -> dict[str, Any]:
    return {"pk": _ledger(ref), "sk": ref.arn, "kind": "auto-reservation", "value": int(value)}


def _ledger(ref: FunctionRef) -> str:
    return f"auto-reservations#{ref.account}#{ref.region}"


def _same_fix(stored: dict[str, Any], spec: dict[str, Any]) -> bool:
    return stored.get("action") == spec["action"] and stored.get("target") == spec["target"] and \
        stored.get("params") == spec["params"]


def _distinct(values: list[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v][:5]
