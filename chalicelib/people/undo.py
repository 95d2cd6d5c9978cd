"""Undo / Restore of an applied fix: the decision behind Slack's Undo / Restore buttons and ``safetycatch undo``.

Undo      fix ``applied`` → ``undoing`` (only one caller wins) → ``fixes.undo`` puts ``spec.prior`` back →
          ``undone`` (or ``undo-failed``). Refused if the target was changed again since the fix (``drift``),
          because putting the old value back would overwrite that change.
Restore   the same for a kill: the kill-switch restores it (its lock, the exact prior, the alarm re-armed).

Example:
    outcome = undo_fix(runtime, fix_id, actor="U0123ABCD")
    outcome.status, outcome.text
    # -> ('undone', 'Undone set-timeout on orders-api: Timeout = 30 again.')
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.act import fixes
from chalicelib.act.drift import drift as drift_of
from chalicelib.core.model import FixSpec, FunctionRef
from chalicelib.decide import limits
from chalicelib.killswitch import kill as killswitch
from chalicelib.people.approvals import Outcome, function_name, refused
from chalicelib.store.state import now_iso

FIX_VERBS = ("undo", "restore")
PAST = {"undo": "undone", "restore": "restored"}
RETRYABLE = killswitch.RESTORABLE  # applied, or undo-failed: a retry goes through the same drift check


def drift(runtime: Any, function_arn: str, spec: FixSpec, retry: bool = False) -> str | None:
    """How the target differs now from what the fix set (None when it still matches), for every fix kind
    (``chalicelib.act.drift``). Undo must not overwrite a change somebody made after the fix.
    """
    ref = FunctionRef.parse(function_arn, "", "")
    if ref is None:
        return f"{function_arn[:80]!r} is not a function ARN"
    return drift_of(runtime.engine(ref.account, ref.region).inventory, ref, spec, retry=retry)


def undo_fix(runtime: Any, fix_id: str, actor: str) -> Outcome:
    """Put back the prior value a fix replaced (Undo of an auto fix, Restore of a kill), exactly once."""
    store = runtime.store
    fix = store.get_fix(fix_id)
    if fix is None:
        return refused(f"No fix {fix_id} (it may be older than the state table keeps).")
    label = "restore" if (fix.get("spec") or {}).get("action") == "kill" else "undo"
    status = str(fix.get("status"))
    if status not in RETRYABLE:
        who = f" by {fix['undo_by']}" if fix.get("undo_by") else ""
        return refused(f"Nothing to {label}: this fix is {fix.get('status')}{who}.", fix, str(fix.get("status")))
    if fix["spec"].get("action") == "kill":  # the kill-switch restores (lock, exact prior, alarm re-armed)
        return _restore_kill(runtime, fix, fix_id, actor)
    try:
        spec = FixSpec.from_json(fix["spec"])
        if spec.action not in fixes.ACTIONS:
            return refused(f"Cannot {label}: fix action {spec.action!r} is not available here.", fix)
        changed = drift(runtime, fix["function"], spec, retry=status != "applied")
    except (ClientError, BotoCoreError, KeyError, TypeError) as exc:
        return refused(f"Cannot {label} now: {type(exc).__name__}; try again.", fix)
    if changed:
        return refused(f"Not {PAST[label]}: the function was changed after the fix ({changed}); putting the old "
                       "value back would overwrite that change.", fix)
    if not store.mark_fix(fix_id, "undoing", status, undo_by=actor[:200], undo_at=now_iso()):
        current = store.get_fix(fix_id) or {}
        return refused(f"Someone was quicker: the fix is already {current.get('status')}.", current,
                       str(current.get("status")))
    return _put_back(runtime, fix, spec, label, actor)


def _put_back(runtime: Any, fix: dict[str, Any], spec: FixSpec, label: str, actor: str) -> Outcome:
    """``undoing`` → the prior value through the gateway → ``undone`` (audited) or ``undo-failed``."""
    store, fix_id = runtime.store, str(fix["id"])
    ref = FunctionRef.parse(fix["function"], "", "")
    region = ref.region if ref else runtime.home_region
    gateway = runtime.engine(ref.account if ref else runtime.bot_account(), region).gateway
    try:
        fixes.undo(gateway, spec)
    except (ClientError, BotoCoreError) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        store.mark_fix(fix_id, "undo-failed", "undoing", reason=reason)
        return Outcome(False, "undo-failed", f"Could not {label}: {reason}", str(fix.get("message_id", "")),
                       fix["function"])
    store.mark_fix(fix_id, "undone", "undoing")
    if spec.action == "set-reserved-concurrency":  # no longer one of the bot's automatic reservations
        limits.record_reservation(store, fix["function"], 0)
    store.audit(fix["function"], {"policy": fix.get("policy", ""), "outcome": PAST[label], "fix_id": fix_id,
                                  "context": f"{label} by {actor}"})
    current, _ = fixes.describe_spec(spec.to_json()).split(" → ", 1)
    return Outcome(True, "undone", f"{PAST[label].capitalize()} {spec.action} on {function_name(fix['function'])}: "
                   f"{current} again.", str(fix.get("message_id", "")), fix["function"])


def _restore_kill(runtime: Any, fix: dict[str, Any], fix_id: str, actor: str) -> Outcome:
    try:
        result = killswitch.restore_fix(runtime, fix_id, actor)
    except killswitch.KillSwitchError as exc:
        return refused(f"Cannot restore: {exc}", fix)
    except (ClientError, BotoCoreError) as exc:
        return refused(f"Cannot restore now: {type(exc).__name__}; try again.", fix)
    restored = result.get("outcome") == "restored"
    return Outcome(restored, "undone" if restored else str(result.get("outcome")), str(result.get("message", "")),
                   str(fix.get("message_id", "")), fix["function"])
