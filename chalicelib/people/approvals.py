"""Approve or Deny a proposed fix: the decision behind Slack's buttons and ``safetycatch approve|deny ID``.

Each decision is a conditional transition in the state table, so double clicks, racing approvers and replayed
requests apply exactly once:

* Approve   PENDING → APPROVED (only one caller wins) → re-read the function and re-evaluate the policy:
            the same fix still needed with the same prior value → apply → APPLIED (or FAILED with the
            reason); the function changed → FAILED ("superseded") and a fresh request is raised with the
            current values; nothing to fix any more → FAILED ("no longer needed"). Never applied blindly.
* Deny      PENDING → DENIED.
* late      past ``expires_at`` (``approval_ttl_hours``) → EXPIRED, refused with a message saying so.

Approval statuses are upper case (``PENDING`` … ``EXPIRED``), fix statuses lower case (``applied``, ``undone``):
both are stored in the state table and shown by ``pending --format json`` and ``history``, so they keep their
case (see ``state.py``). Undo / Restore of an applied fix is ``chalicelib.people.undo``;
``chalicelib.people.decisions`` is the one entry for every verb.

Example:
    outcome = decide_approval(runtime, "approve", approval_id, actor="U0123ABCD")
    outcome.status, outcome.text
    # -> ('APPLIED', 'Applied set-timeout on orders-api: Timeout = 30 → Timeout = 25.')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.act.fixes import describe_spec
from chalicelib.core.log import logger
from chalicelib.core.model import FunctionRef
from chalicelib.store.state import now_iso

APPROVAL_VERBS = ("approve", "deny")


@dataclass
class Outcome:
    """What a person's decision did: ``ok`` when their request was carried out; ``text`` is for them (plain
    text: a Slack reply escapes it)."""

    ok: bool
    status: str
    text: str
    message_id: str = ""
    function: str = ""


def refused(text: str, record: dict[str, Any] | None = None, status: str = "refused") -> Outcome:
    """A request not carried out: ``record`` (approval or fix) names the message and function it concerns.

    Example:
        >>> refused("No fix abc.", {"function": "arn:aws:lambda:us-east-1:1:function:f"}).function
        'arn:aws:lambda:us-east-1:1:function:f'
    """
    record = record or {}
    return Outcome(False, status, text, str(record.get("message_id", "")), str(record.get("function", "")))


def function_name(arn: str) -> str:
    return arn.rsplit(":function:", 1)[-1]


def decide_approval(runtime: Any, verb: str, approval_id: str, actor: str) -> Outcome:
    """Approve or deny the pending approval ``approval_id`` for ``actor`` (already authorised by the caller)."""
    store = runtime.store
    approval = store.get_approval(approval_id)
    if approval is None:
        return refused(f"No approval {approval_id} (it may be older than the state table keeps).")
    status = approval.get("status")
    if status != "PENDING":
        who = f" by {approval['decided_by']}" if approval.get("decided_by") else ""
        return refused(f"Already {status.lower()}{who}{_at(approval.get('decided_at') or approval.get('updated_at'))}"
                       f" - nothing more to do.", approval, status)
    if int(approval.get("expires_at", 0)) <= store.clock():
        store.transition_approval(approval_id, "PENDING", "EXPIRED")
        return refused(f"This request expired{_at_epoch(approval.get('expires_at'))} "
                       f"(approval_ttl_hours = {runtime.settings.approval_ttl_hours:g}); nothing was changed. "
                       "The next event or sweep that still finds the problem asks again.", approval, "EXPIRED")
    decided = {"decided_by": actor[:200], "decided_at": now_iso()}
    if verb == "deny":
        return _deny(store, approval, decided, actor)
    if not store.transition_approval(approval_id, "PENDING", "APPROVED", **decided):
        return _lost_race(store, approval_id)
    return _apply_approved(runtime, {**approval, **decided, "status": "APPROVED"}, actor)


def _deny(store: Any, approval: dict[str, Any], decided: dict[str, str], actor: str) -> Outcome:
    if not store.transition_approval(approval["id"], "PENDING", "DENIED", **decided):
        return _lost_race(store, approval["id"])
    store.audit(approval["function"], {"policy": approval.get("policy", ""), "outcome": "denied",
                                       "approval_id": approval["id"], "context": f"denied by {actor}"})
    return Outcome(True, "DENIED", f"Denied {approval.get('policy')} on {function_name(approval['function'])}; "
                   "nothing changed.", str(approval.get("message_id", "")), approval["function"])


def _at(iso: Any) -> str:
    return f" at {str(iso)[:19].replace('T', ' ')} UTC" if iso else ""


def _at_epoch(epoch: Any) -> str:
    try:
        return " at " + datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError):
        return ""


def _lost_race(store: Any, item_id: str) -> Outcome:
    current = store.get_approval(item_id) or {}
    who = f" by {current['decided_by']}" if current.get("decided_by") else ""
    return refused(f"Someone was quicker: already {str(current.get('status', 'decided')).lower()}{who}.", current,
                   str(current.get("status", "refused")))


def _fail(store: Any, approval: dict[str, Any], reason: str, **attrs: Any) -> Outcome:
    store.transition_approval(approval["id"], "APPROVED", "FAILED", reason=reason[:500], **attrs)
    return Outcome(False, "FAILED", f"Not applied: {reason}", str(approval.get("message_id", "")),
                   approval["function"])


def _reevaluate(engine: Any, ref: FunctionRef) -> tuple[Any, list[Any], list[str]]:
    """(snapshot or None, [(finding, cfg)], errors) of the function as it is now."""
    snapshot = engine.inventory.function(ref)
    errors: list[str] = []
    found = engine.evaluate([snapshot], errors).get(ref.arn, []) if snapshot else []
    return snapshot, found, errors


def _apply_approved(runtime: Any, approval: dict[str, Any], actor: str) -> Outcome:
    """APPROVED → re-read, re-evaluate, apply only what is still true → APPLIED | FAILED."""
    store, spec = runtime.store, approval.get("spec") or {}
    ref = FunctionRef.parse(approval["function"], "", "")
    if ref is None:
        return _fail(store, approval, "the approval names no function")
    engine = runtime.engine(ref.account, ref.region)
    try:
        snapshot, found, errors = _reevaluate(engine, ref)
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
    if cfg.mode not in ("approve", "auto"):
        return _fail(store, approval, f"policy {cfg.id} is now in {cfg.mode} mode: it changes nothing")
    if finding.fix.to_json() != spec:
        return _superseded(engine, store, approval, snapshot, finding, cfg, actor)
    return _apply(engine, store, approval, (ref, snapshot), finding, cfg, actor)


def _superseded(engine: Any, store: Any, approval: dict[str, Any], snapshot: Any, finding: Any, cfg: Any,
                actor: str) -> Outcome:
    """The function changed since the request: FAILED, and a fresh request with the current values."""
    context = f"re-evaluated after {actor} approved {approval['id']}: the function changed"
    fresh = engine.decide(snapshot, finding, cfg, act=True, context=context)
    outcome = _fail(store, approval, "superseded - the function changed since the request "
                                     f"(now {describe_spec(finding.fix.to_json())}); asked again with the "
                                     "current values", superseded_by=fresh.approval_id)
    try:
        engine.notifier.notify(snapshot, [fresh], context)
    except Exception as exc:  # noqa: BLE001 - the fresh request is stored; the next event re-sends it
        logger.warning("could not post the fresh request", extra={"error": str(exc)[:200]})
    return outcome


def _apply(engine: Any, store: Any, approval: dict[str, Any], target: tuple[FunctionRef, Any], finding: Any,
           cfg: Any, actor: str) -> Outcome:
    """The approved fix, still exactly what was asked: apply it → APPLIED | FAILED."""
    ref, snapshot = target
    decision = engine.apply_approved(snapshot, finding, cfg, context=f"approved by {actor} ({approval['id']})")
    if decision.outcome != "fixed":
        return _fail(store, approval, decision.detail or decision.outcome, fix_id=decision.fix_id)
    store.transition_approval(approval["id"], "APPROVED", "APPLIED", fix_id=decision.fix_id)
    if approval.get("message_id"):
        store.link_message("fix", decision.fix_id, str(approval["message_id"]), str(approval.get("channel", "")),
                           str(approval.get("ts", "")))
    spec = approval.get("spec") or {}
    return Outcome(True, "APPLIED", f"Applied {spec.get('action')} on {ref.name}: {describe_spec(spec)}.",
                   str(approval.get("message_id", "")), ref.arn)
