"""Human decisions on proposed fixes: Approve, Deny, and Undo / Restore of applied fixes.

One code path for Slack buttons (the worker) and the CLI fallback (``safetycatch approve ID``). Each decision
is a conditional transition in the state table, so double clicks, racing approvers and replayed requests
apply exactly once:

* Approve   PENDING → APPROVED (only one caller wins) → re-read the function and re-evaluate the policy:
            the same fix still needed with the same prior value → apply → APPLIED (or FAILED with the
            reason); the function changed → FAILED ("superseded") and a fresh request is raised with the
            current values; nothing to fix any more → FAILED ("no longer needed"). Never applied blindly.
* Deny      PENDING → DENIED.
* late      past ``expires_at`` (``approval_ttl_hours``) → EXPIRED, refused with a message saying so.
* Undo      fix ``applied`` → ``undoing`` (only one caller wins) → ``fixes.undo`` puts ``spec.prior`` back →
            ``undone`` (or ``undo-failed``). Refused if the function was changed again since the fix.

Example:
    outcome = decide(runtime, "approve", approval_id, actor="U0123ABCD")
    outcome.status, outcome.text
    # -> ('APPLIED', 'Applied set-timeout on orders-api: Timeout = 30 → Timeout = 25.')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import fixes
from chalicelib.gateway import WriteCapReached
from chalicelib.log import logger
from chalicelib.model import FixSpec, FunctionRef
from chalicelib.state import now_iso

APPROVAL_VERBS = ("approve", "deny")
FIX_VERBS = ("undo", "restore")
PAST = {"undo": "undone", "restore": "restored"}
_ID = re.compile(r"^[0-9A-Za-z_-]{8,64}$")


@dataclass
class Outcome:
    """What a decision did: ``ok`` when the person's request was carried out; ``text`` is for them."""

    ok: bool
    status: str
    text: str
    message_id: str = ""
    function: str = ""


def _name(arn: str) -> str:
    return arn.rsplit(":function:", 1)[-1]


def _refused(text: str, record: dict[str, Any] | None = None, status: str = "refused") -> Outcome:
    record = record or {}
    return Outcome(False, status, text, str(record.get("message_id", "")), str(record.get("function", "")))


def decide(runtime: Any, verb: str, item_id: str, actor: str) -> Outcome:
    """Carry out ``verb`` (approve, deny, undo, restore) on the approval / fix ``item_id`` for ``actor``.

    The caller has already checked that ``actor`` may decide. Never raises for bad input.
    """
    if verb not in APPROVAL_VERBS + FIX_VERBS:
        return _refused(f"Unknown action {verb[:20]!r}.")
    if not isinstance(item_id, str) or not _ID.match(item_id):
        return _refused(f"{str(item_id)[:80]!r} is not a safetycatch request id.")
    if runtime.mode != "enforce":
        return _refused(f"safetycatch is in {runtime.mode} mode (SAFETYCATCH_MODE): nothing is changed.")
    if verb in FIX_VERBS:
        return undo(runtime, item_id, actor)
    store = runtime.store
    approval = store.get_approval(item_id)
    if approval is None:
        return _refused(f"No approval {item_id} (it may be older than the state table keeps).")
    status = approval.get("status")
    if status != "PENDING":
        who = f" by {approval['decided_by']}" if approval.get("decided_by") else ""
        return _refused(f"Already {status.lower()}{who}{_at(approval.get('decided_at') or approval.get('updated_at'))}"
                        f" - nothing more to do.", approval, status)
    if int(approval.get("expires_at", 0)) <= store.clock():
        store.transition_approval(item_id, "PENDING", "EXPIRED")
        return _refused(f"This request expired{_at_epoch(approval.get('expires_at'))} "
                        f"(approval_ttl_hours = {runtime.settings.approval_ttl_hours:g}); nothing was changed. "
                        "The next event or sweep that still finds the problem asks again.", approval, "EXPIRED")
    decided = {"decided_by": actor[:200], "decided_at": now_iso()}
    if verb == "deny":
        if not store.transition_approval(item_id, "PENDING", "DENIED", **decided):
            return _lost_race(store, item_id)
        store.audit(approval["function"], {"policy": approval.get("policy", ""), "outcome": "denied",
                                           "approval_id": item_id, "context": f"denied by {actor}"})
        return Outcome(True, "DENIED", f"Denied {approval.get('policy')} on {_name(approval['function'])}; "
                       "nothing changed.", str(approval.get("message_id", "")), approval["function"])
    if not store.transition_approval(item_id, "PENDING", "APPROVED", **decided):
        return _lost_race(store, item_id)
    return _apply_approved(runtime, {**approval, **decided, "status": "APPROVED"}, actor)


def _at(iso: Any) -> str:
    return f" at {str(iso)[:19].replace('T', ' ')} UTC" if iso else ""


def _at_epoch(epoch: Any) -> str:
    from datetime import datetime, timezone

    try:
        return " at " + datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return ""


def _lost_race(store: Any, item_id: str) -> Outcome:
    current = store.get_approval(item_id) or {}
    who = f" by {current['decided_by']}" if current.get("decided_by") else ""
    return _refused(f"Someone was quicker: already {str(current.get('status', 'decided')).lower()}{who}.", current,
                    str(current.get("status", "refused")))


def _fail(store: Any, approval: dict[str, Any], reason: str, **attrs: Any) -> Outcome:
    store.transition_approval(approval["id"], "APPROVED", "FAILED", reason=reason[:500], **attrs)
    return Outcome(False, "FAILED", f"Not applied: {reason}", str(approval.get("message_id", "")),
                   approval["function"])


def _apply_approved(runtime: Any, approval: dict[str, Any], actor: str) -> Outcome:
    """APPROVED → re-read, re-evaluate, apply only what is still true → APPLIED | FAILED."""
    store, spec = runtime.store, approval.get("spec") or {}
    ref = FunctionRef.parse(approval["function"], "", "")
    if ref is None:
        return _fail(store, approval, "the approval names no function")
    engine = runtime.engine(ref.account, ref.region)
    try:
        snapshot = engine.inventory.function(ref)
        errors: list[str] = []
        found = engine.evaluate([snapshot], errors).get(ref.arn, []) if snapshot else []
    except (ClientError, BotoCoreError) as exc:
        return _fail(store, approval, f"could not re-read the function ({type(exc).__name__}); try again")
    if snapshot is None:
        return _fail(store, approval, "the function no longer exists")
    if snapshot.tags_unreadable:
        return _fail(store, approval, f"its tags cannot be read ({snapshot.tags_unreadable[:200]}), so whether it "
                                      "is exempt is unknown; nothing was changed")
    if errors:
        return _fail(store, approval, f"could not re-evaluate the function: {errors[0]}")
    same_target = [(f, cfg) for f, cfg in found
                   if f.policy == approval.get("policy") and f.fix and f.fix.target == spec.get("target")]
    if not same_target:
        return _fail(store, approval, f"no longer needed - the function changed since the request and "
                                      f"{approval.get('policy')} finds nothing to fix now")
    finding, cfg = same_target[0]
    assert finding.fix is not None
    if cfg.mode not in ("approve", "auto"):
        return _fail(store, approval, f"policy {cfg.id} is now in {cfg.mode} mode: it changes nothing")
    if finding.fix.to_json() != spec:
        context = f"re-evaluated after {actor} approved {approval['id']}: the function changed"
        fresh = engine.decide(snapshot, finding, cfg, act=True, context=context)
        outcome = _fail(store, approval, "superseded - the function changed since the request "
                                         f"(now {_describe(finding.fix.to_json())}); asked again with the "
                                         "current values", superseded_by=fresh.approval_id)
        try:
            engine.notifier.notify(snapshot, [fresh], context)
        except Exception as exc:  # noqa: BLE001 - the fresh request is stored; the next event re-sends it
            logger.warning("could not post the fresh request", extra={"error": str(exc)[:200]})
        return outcome
    decision = engine.apply_approved(snapshot, finding, cfg, context=f"approved by {actor} ({approval['id']})")
    if decision.outcome != "fixed":
        return _fail(store, approval, decision.detail or decision.outcome, fix_id=decision.fix_id)
    store.transition_approval(approval["id"], "APPROVED", "APPLIED", fix_id=decision.fix_id)
    if approval.get("message_id"):
        store.link_message("fix", decision.fix_id, str(approval["message_id"]), str(approval.get("channel", "")),
                           str(approval.get("ts", "")))
    return Outcome(True, "APPLIED", f"Applied {spec.get('action')} on {ref.name}: {_describe(spec)}.",
                   str(approval.get("message_id", "")), ref.arn)


def _describe(spec: dict[str, Any]) -> str:
    from chalicelib.slack_messages import describe_change

    current, proposed = describe_change(spec)
    return f"{current.replace(chr(10), ', ')} → {proposed.replace(chr(10), ', ')}"


# -- undo / restore ------------------------------------------------------------------------------


def drift(runtime: Any, function_arn: str, spec: FixSpec) -> str | None:
    """How the target differs now from what the fix set (None when it still matches or cannot be told).

    Undo must not overwrite a change somebody made after the fix.
    """
    ref = FunctionRef.parse(function_arn, "", "")
    if ref is None:
        return None
    inventory = runtime.engine(ref.account, ref.region).inventory
    current: dict[str, Any] = {}
    if "FunctionResponseTypes" in spec.params:
        mapping = inventory.mapping(spec.target)
        if mapping is None:
            return f"mapping {spec.target} no longer exists"
        current["FunctionResponseTypes"] = list(mapping.response_types)
    else:
        snapshot = inventory.function(ref)
        if snapshot is None:
            return "the function no longer exists"
        current = {"Timeout": snapshot.timeout_s, "MemorySize": snapshot.memory_mb}
        if "ReservedConcurrentExecutions" in spec.params:
            current["ReservedConcurrentExecutions"] = inventory.reserved_concurrency(ref)
    changed = [f"{key} is now {current[key]}, the fix set {value}" for key, value in spec.params.items()
               if key in current and _norm(current[key]) != _norm(value)]
    return "; ".join(changed) or None


def _norm(value: Any) -> Any:
    return sorted(map(str, value)) if isinstance(value, (list, tuple)) else value


def undo(runtime: Any, fix_id: str, actor: str) -> Outcome:
    """Put back the prior value a fix replaced (Undo of an auto fix, Restore of a kill), exactly once."""
    store = runtime.store
    fix = store.get_fix(fix_id)
    if fix is None:
        return _refused(f"No fix {fix_id} (it may be older than the state table keeps).")
    label = "restore" if (fix.get("spec") or {}).get("action") == "kill" else "undo"
    if fix.get("status") != "applied":
        who = f" by {fix['undo_by']}" if fix.get("undo_by") else ""
        return _refused(f"Nothing to {label}: this fix is {fix.get('status')}{who}.", fix, str(fix.get("status")))
    if fix["spec"].get("action") == "kill":  # the kill-switch restores (lock, exact prior, alarm re-armed)
        return _restore_kill(runtime, fix, fix_id, actor)
    try:
        spec = FixSpec.from_json(fix["spec"])
        if spec.action not in fixes.ACTIONS:
            return _refused(f"Cannot {label}: fix action {spec.action!r} is not available here.", fix)
        changed = drift(runtime, fix["function"], spec)
    except (ClientError, BotoCoreError, KeyError, TypeError) as exc:
        return _refused(f"Cannot {label} now: {type(exc).__name__}; try again.", fix)
    if changed:
        return _refused(f"Not {PAST[label]}: the function was changed after the fix ({changed}); putting the old "
                        "value back would overwrite that change.", fix)
    if not store.mark_fix(fix_id, "undoing", "applied", undo_by=actor[:200], undo_at=now_iso()):
        current = store.get_fix(fix_id) or {}
        return _refused(f"Someone was quicker: the fix is already {current.get('status')}.", current,
                        str(current.get("status")))
    ref = FunctionRef.parse(fix["function"], "", "")
    region = ref.region if ref else runtime.home_region
    gateway = runtime.engine(ref.account if ref else runtime.bot_account(), region).gateway
    try:
        fixes.undo(gateway, spec)
    except (ClientError, BotoCoreError, WriteCapReached) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        store.mark_fix(fix_id, "undo-failed", "undoing", reason=reason)
        return Outcome(False, "undo-failed", f"Could not {label}: {reason}", str(fix.get("message_id", "")),
                       fix["function"])
    store.mark_fix(fix_id, "undone", "undoing")
    store.audit(fix["function"], {"policy": fix.get("policy", ""), "outcome": PAST[label], "fix_id": fix_id,
                                  "context": f"{label} by {actor}"})
    current, _ = _describe(spec.to_json()).split(" → ", 1)
    return Outcome(True, "undone", f"{PAST[label].capitalize()} {spec.action} on {_name(fix['function'])}: "
                   f"{current} again.", str(fix.get("message_id", "")), fix["function"])


def _restore_kill(runtime: Any, fix: dict[str, Any], fix_id: str, actor: str) -> Outcome:
    from chalicelib import killswitch

    try:
        result = killswitch.restore_fix(runtime, fix_id, actor)
    except killswitch.KillSwitchError as exc:
        return _refused(f"Cannot restore: {exc}", fix)
    except (ClientError, BotoCoreError) as exc:
        return _refused(f"Cannot restore now: {type(exc).__name__}; try again.", fix)
    restored = result.get("outcome") == "restored"
    return Outcome(restored, "undone" if restored else str(result.get("outcome")), str(result.get("message", "")),
                   str(fix.get("message_id", "")), fix["function"])
