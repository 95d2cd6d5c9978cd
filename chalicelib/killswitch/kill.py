"""The kill-switch: throttle a runaway function to zero in seconds, and put it back exactly as it was.

A kill stores the exact prior state first (reserved concurrency or none, the event source mappings it disables
with their state, Lambda's recursion setting or ``"unavailable"``) as a fix record of action ``kill``, then
sets reserved concurrency to 0, disables the enabled mappings and sets RecursiveLoop=Terminate where the API
exists, all through the gateway; it audits and notifies (``Notifier.notify_kill``). ``restore`` is
``fixes.undo`` of that record.

Blast radius: never a ``never_kill`` function, the bot's own functions (``own_functions``: exact ARNs, and the
function this runs in) or an exempt-tagged one; at most
``max_kills_per_hour`` automatic kills per account (beyond: notify only, loudly). A per-function lock in the
state table, taken by conditional write, makes two pieces of evidence for one loop one kill, and an already
killed function is never re-killed (its stored prior would become the zeroed state).

Example:
    result = kill(runtime, "orders-api", reason="bill spike", actor="alice")
    result["outcome"], result["fix"]["prior"]["ReservedConcurrentExecutions"]
    # -> ('fixed', None)
    restore(runtime, "orders-api", actor="alice")["outcome"]
    # -> 'restored'
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.act import fixes
from chalicelib.act.drift import drift
from chalicelib.checks import REGISTRY
from chalicelib.core.aws import Clients, describe_error
from chalicelib.core.log import logger
from chalicelib.core.model import Decision, Finding, FixSpec, FunctionRef, FunctionSnapshot
from chalicelib.decide.engine import NOTE_REPEAT_SECONDS, Engine, EventReport
from chalicelib.domain import alarms
from chalicelib.domain.loops import ACTIVE_MAPPING_STATES
from chalicelib.inventory import health
from chalicelib.inventory.metrics import ContributorsUnavailable
from chalicelib.killswitch import sentinel
from chalicelib.killswitch.evidence import (
    ALARM_STATE_CHANGE,
    CONTRIBUTOR_STATE_CHANGE,
    HEALTH_EVENT,
    AlarmVerdict,
    Evidence,
    function_in_scope,
    verify_alarm_evidence,
    verify_contributor,
    verify_health_notice,
    verify_sentinel_evidence,
)
from chalicelib.policy.settings import PolicyConfig, PolicySet, Settings
from chalicelib.store.state import StateStore, now_iso

POLICY = "runaway-loop"
RESTORABLE = ("applied", "undo-failed")  # the same fix statuses as any Undo (undo.undo_fix)
STALE_CLAIM_SECONDS = 900  # a kill still "killing" after this crashed half-way; it may be taken over


class KillRuntime(Protocol):
    """What the kill-switch is handed, and all it uses. ``chalicelib.bot.runtime.Runtime`` is one: the wiring sits
    above the kill-switch, so the kill-switch names it by shape and never imports it (tests/project/test_structure.py).

    Usage (the handlers and the CLI):
        kill(Runtime.from_env(), "arn:aws:lambda:us-east-1:123456789012:function:orders-api", "loop", "U123")
    """

    @property
    def mode(self) -> str: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def policy_set(self) -> PolicySet: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def home_region(self) -> str: ...
    @property
    def writes_state(self) -> bool: ...
    def engine(self, account: str, region: str) -> Engine: ...
    def clients(self, region: str | None = None, account: str | None = None) -> Clients: ...
    def bot_account(self) -> str: ...
    def account_label(self, account: str) -> str: ...


class KillSwitchError(ValueError):
    """The request cannot be carried out (bad function, nothing to restore, bot off): one line, shown as is."""


def kill(runtime: KillRuntime, function_arn: str, reason: str, actor: str, *,
         automatic: bool = False) -> dict[str, Any]:
    """Kill one function now; returns the contract finding object (``outcome``: ``fixed`` when it is killed,
    also when it already was; ``exempt`` for never_kill / the bot's own / exempt-tagged; ``notified`` when a
    cap or the policy mode held the kill back; ``dry-run``; ``failed``). ``automatic`` kills (evidence
    handlers) follow the policy mode and the hourly cap; manual kills (CLI, Slack) do not.

    Raises ``KillSwitchError`` for a bad function name, a function that does not exist or the bot being off.

    Example:
        kill(runtime, "arn:aws:lambda:us-east-1:123456789012:function:thumbnailer", "loop", "alice")["outcome"]
        # -> 'fixed'
    """
    return _kill(runtime, _ref(runtime, function_arn), reason, actor, automatic).to_json()


def restore(runtime: KillRuntime, function_arn: str, actor: str, *, fix_id: str | None = None) -> dict[str, Any]:
    """Undo the function's active kill (or the kill ``fix_id``): put back exactly the stored prior state.

    Returns ``{"function", "fix_id", "outcome": "restored"|"failed"|"dry-run", "message", "prior"}``. Raises
    ``KillSwitchError`` when there is no kill to restore or another restore is under way.

    Example:
        restore(runtime, "thumbnailer", actor="alice")["message"]
        # -> 'thumbnailer restored: reserved concurrency unset again, 1 mapping re-enabled, RecursiveLoop unchanged.'
    """
    ref = _ref(runtime, function_arn)
    name = _named(runtime, ref)[0]
    engine = runtime.engine(ref.account, ref.region)
    store = engine.store
    fix = _active_kill(engine, ref, fix_id)
    if fix is None:
        hint = "" if runtime.writes_state else " (state is in memory for this run: set SAFETYCATCH_TABLE)"
        raise KillSwitchError(f"{name} has no kill to restore{hint}")
    spec = FixSpec.from_json(fix["spec"])
    result: dict[str, Any] = {"function": ref.arn, "fix_id": fix["id"], "prior": spec.prior, "actor": actor}
    # every attempt compares; a retry after a half-failed restore also accepts the prior values it put back
    changed = drift(engine.inventory, ref, spec, retry=fix["status"] != "applied")
    if changed:
        raise KillSwitchError(f"{name} NOT restored: it was changed after the kill ({changed}); putting the "
                              "prior state back would overwrite that change")
    if runtime.mode == "dry-run":
        return {**result, "outcome": "dry-run", "message": f"would restore {name}: {_describe_prior(spec)}"}
    if not store.mark_fix(fix["id"], "undoing", fix["status"], undo_by=actor[:200], undo_at=now_iso()):
        raise KillSwitchError(f"{name}: kill {fix['id']} is already being restored")
    try:
        fixes.undo(engine.gateway, spec)
    except (ClientError, BotoCoreError) as exc:
        store.mark_fix(fix["id"], "undo-failed", "undoing", reason=describe_error(exc))
        result.update(outcome="failed", message=f"{name} NOT fully restored: {describe_error(exc)}; retry the restore")
    else:
        store.mark_fix(fix["id"], "undone", "undoing")
        lock = store.kill_lock(ref.arn)
        if lock and lock.get("fix_id") == fix["id"]:
            store.set_kill(ref.arn, str(lock["token"]), "restored")
        rearmed = _rearm_restored(runtime, engine, ref, actor)
        result.update(outcome="restored", message=f"{name} restored: {_describe_prior(spec)}{rearmed}.")
    store.audit(ref.arn, {"policy": POLICY, "mode": "manual", "outcome": result["outcome"],
                          "message": result["message"], "context": f"restore by {actor}", "fix_id": fix["id"]})
    logger.info("kill-switch restore", extra={"function": ref.arn, "fix_id": fix["id"],
                                                 "outcome": result["outcome"], "actor": actor})
    return result


def restore_fix(runtime: KillRuntime, fix_id: str, actor: str) -> dict[str, Any]:
    """``restore`` by the kill's fix id alone (what a Slack Restore button carries)."""
    fix = runtime.store.get_fix(fix_id) if isinstance(fix_id, str) and fix_id.isalnum() else None
    if fix is None or (fix.get("spec") or {}).get("action") != "kill":
        raise KillSwitchError(f"no kill {str(fix_id)[:40]!r} to restore")
    return restore(runtime, fix["function"], actor, fix_id=fix_id)


def handle_evidence(runtime: KillRuntime, evidence: Evidence) -> EventReport:
    """Kill every function the evidence names and confirms (automatic: policy mode, cap and blast radius apply),
    in the evidence's own account and region only: the bot's, or a member's through the member role. One engine
    serves the whole piece of evidence (the alarm's re-read, its verification, the kills, the re-arming)."""
    report = EventReport(evidence.key, evidence.event_name)
    cfg = runtime.policy_set.policies.get(POLICY)
    if cfg is None or cfg.mode == "off":
        report.skipped = f"the {POLICY} policy is off (no policies/{POLICY}.yaml, or mode off)"
        return report
    engine = runtime.engine(evidence.account, evidence.region)
    if evidence.kind == HEALTH_EVENT:
        evidence = _confirmed_health(runtime, engine, evidence, report)
    stop: list[str] = []  # why the contributors still to come are left (the hourly kill cap)
    failed = []
    for ref, confirmed in _suspects(runtime, engine, evidence, report, stop):
        report.function = report.function or ref.arn
        if (ref.account, ref.region) != (evidence.account, evidence.region):
            report.errors.append(f"{ref.arn} is not in the event's own account and region ({evidence.account} "
                                 f"{evidence.region}): an event acts only there")
            continue
        if _kill_one(runtime, engine, evidence, ref, confirmed, report, stop):
            failed.append(ref.name)
    if failed and evidence.kind in (ALARM_STATE_CHANGE, CONTRIBUTOR_STATE_CHANGE):
        # what fired stays in ALARM and would never fire again: back to OK, so the next evaluation retries the kill
        # (the function's own alarm, or the sentinel: SetAlarmState has no contributor, the sentinel's next ALARM
        # change names every contributor still in ALARM)
        rearmed = _rearm(engine, evidence.event_name, "safetycatch, after a failed kill")
        report.errors.append(f"{', '.join(failed)}: the kill failed{rearmed or '; alarm not in ALARM'}")
    if not report.decisions and report.skipped is None and len(report.errors) == 1:
        report.skipped = report.errors.pop()
    return report


def _kill_one(runtime: KillRuntime, engine: Engine, evidence: Evidence, ref: FunctionRef, confirmed: str,
              report: EventReport, stop: list[str]) -> bool:
    """One automatic kill of the evidence, its decision (or error) in ``report``; True when the kill failed. A kill
    the hourly cap held back sets ``stop``: the sentinel's contributors still to come are then listed, not acted on."""
    try:
        decision = _kill(runtime, ref, evidence.reason, "safetycatch", automatic=True,
                         observed_at=evidence.observed_at, confirmed=confirmed, engine=engine, errors=report.errors)
    except KillSwitchError as exc:
        report.errors.append(str(exc))
        return False
    except (ClientError, BotoCoreError) as exc:
        report.errors.append(f"{ref.name}: {describe_error(exc)}")
        return True
    report.decisions.append(decision)
    if decision.detail.startswith("rate cap"):
        stop.append(f"the hourly kill cap ({decision.detail}) is reached")
    return decision.outcome == "failed"


def _suspects(runtime: KillRuntime, engine: Engine, evidence: Evidence, report: EventReport,
              stop: list[str]) -> Iterable[tuple[FunctionRef, str]]:
    """The functions the evidence may kill, each with what the bot verified ('' for an AWS Health notice: AWS's
    own word). Never the event's word alone: an alarm is verified (``evidence.verify_alarm_evidence``), a
    sentinel's contributors confirmed one by one; what is refused is set in ``report``."""
    if evidence.kind == CONTRIBUTOR_STATE_CHANGE or sentinel.is_sentinel(evidence.event_name):
        return _sentinel_suspects(runtime, engine, evidence, report, stop)
    if evidence.kind != ALARM_STATE_CHANGE:
        return [(ref, "") for ref in evidence.functions]
    (ref,) = evidence.functions[:1]
    verdict = verify_alarm_evidence(evidence, recorded_alarm(engine.store, ref.arn), engine.inventory,
                                    runtime.policy_set, last_restore(engine.store, ref.arn))
    if not verdict.ok:
        report.function, report.skipped = ref.arn, _refuse_alarm(runtime, engine, evidence, verdict, report)
        return []
    return [(ref, verdict.reason)]


def _confirmed_health(runtime: KillRuntime, engine: Engine, evidence: Evidence, report: EventReport) -> Evidence:
    """The Health notice narrowed to what AWS confirms: the Health API read in the notice's own account
    (``evidence.verify_health_notice``), and each function in kill-switch scope on a fresh read. Where the Health
    API cannot be read, nothing (said in ``report.skipped``): Health evidence alone never kills."""
    try:
        notice = health.read_notice_anywhere(lambda region: runtime.clients(region, evidence.account), evidence.key)
    except health.HealthUnavailable as exc:
        logger.warning("health notice not verifiable", extra={"event_arn": evidence.key, "error": str(exc)})
        report.skipped = f"{exc}: nothing killed on an AWS Health notice alone"
        return dataclasses.replace(evidence, functions=())
    refs, verdict = verify_health_notice(evidence, notice, datetime.fromtimestamp(engine.store.clock(), timezone.utc))
    if not verdict.ok:
        logger.warning("health notice refused", extra={"event_arn": evidence.key, "reason": verdict.reason})
        report.skipped = f"AWS Health notice refused: {verdict.reason}: nothing killed"
        return dataclasses.replace(evidence, functions=())
    confirmed = []
    for ref in refs:
        if (ref.account, ref.region) != (evidence.account, evidence.region):  # read nowhere else: not even there
            report.errors.append(f"{ref.arn} is not in the event's own account and region ({evidence.account} "
                                 f"{evidence.region}): an event acts only there")
            continue
        scoped = function_in_scope(engine.inventory, ref, runtime.policy_set)
        if scoped.ok:
            confirmed.append(ref)
        else:
            report.errors.append(f"{ref.name} not killed: {scoped.reason}")
    report.errors.extend(f"{ref.name} not killed: the Health API does not list it" for ref in evidence.functions
                         if ref not in refs)
    if not confirmed and report.errors:
        report.function = report.function or evidence.functions[0].arn
        report.skipped = report.errors.pop(0) if len(report.errors) == 1 else "nothing killed: " + "; ".join(
            report.errors)[:400]
    return dataclasses.replace(evidence, functions=tuple(confirmed), observed_at=verdict.at or evidence.observed_at,
                               reason=f"{evidence.reason} ({verdict.reason})")


def _sentinel_suspects(runtime: KillRuntime, engine: Engine, evidence: Evidence, report: EventReport,
                       stop: list[str]) -> Iterator[tuple[FunctionRef, str]]:
    """The contributors in ALARM of a sentinel the bot put - every page of them, or only the one a contributor
    event names - each confirmed exactly as any kill (``evidence.verify_contributor``: the function's own metrics
    over its own alarm's thresholds) in the window ending at its own ``StateTransitionedTimestamp``. Refused
    ones, and those left once ``stop`` says why (the kill cap), are reported in ``report.errors``."""
    params = _config(runtime).params
    verdict = verify_sentinel_evidence(evidence, engine.inventory, params)
    if not verdict.ok or verdict.at is None:
        report.skipped = _refuse_alarm(runtime, engine, evidence, verdict, report)
        return
    try:
        contributors = engine.inventory.alarm_contributors(evidence.event_name)
    except ContributorsUnavailable as exc:
        report.errors.append(str(exc))
        return
    if evidence.contributor:
        contributors = [c for c in contributors if c.get("ContributorId") == evidence.contributor]
        if not contributors:
            report.skipped = (f"contributor {evidence.functions[0].name} of {evidence.event_name} is not in ALARM "
                              "now (DescribeAlarmContributors): nothing killed")
            return
    for index, item in enumerate(contributors):
        attributes = item.get("ContributorAttributes") or {}
        name = str(attributes.get("FunctionName") or "")
        if stop:
            left = [str((c.get("ContributorAttributes") or {}).get("FunctionName")) for c in contributors[index:]]
            report.errors.append(f"{len(left)} contributor(s) NOT acted on, {stop[0]}: {', '.join(left)[:600]}")
            return
        ref = FunctionRef.parse(name, evidence.account, evidence.region) if name else None
        if ref is None or ref.arn.split(":function:", 1)[1] != name:
            report.errors.append(f"sentinel contributor without a plain function name: {str(attributes)[:120]}")
            continue
        changed = item.get("StateTransitionedTimestamp")
        at = changed.astimezone(timezone.utc) if isinstance(changed, datetime) else verdict.at
        confirmed = verify_contributor(engine.inventory, ref, params, at, last_restore(engine.store, ref.arn))
        if confirmed.ok:
            yield ref, confirmed.reason
        else:
            report.errors.append(f"{name} not killed: {confirmed.reason}")


def last_restore(store: Any, function_arn: str) -> datetime | None:
    """When the kill-switch last restored the function (None if it is not restored): the metrics that confirm a
    kill start after it, so a loop that was already stopped never confirms a new kill."""
    lock = store.kill_lock(function_arn)
    if not lock or lock.get("status") != "restored":
        return None
    return datetime.fromtimestamp(int(lock.get("since", 0)), timezone.utc)


def recorded_alarm(store: Any, function_arn: str) -> dict[str, Any] | None:
    """The runaway alarm safetycatch put on the function, as it recorded it when it put it: the newest applied
    ``put-runaway-alarm`` fix (``{"params": thresholds, "canonical": the alarm}``); None when it never put one
    (or its last one was undone). Only the bot writes fix records.

    Example:
        recorded_alarm(runtime.store, "arn:aws:lambda:us-east-1:123456789012:function:orders-api")["params"]
        # -> {'AlarmName': 'safetycatch-runaway-orders-api', 'FunctionName': 'orders-api', ...}
    """
    for fix in store.fixes_for(function_arn):
        spec = fix.get("spec") or {}
        if spec.get("action") != "put-runaway-alarm" or fix.get("status") != "applied":
            continue
        params = spec.get("params") or {}
        definition = fix.get("alarm_definition")  # older records: the definition follows from the thresholds
        canonical = json.loads(definition) if isinstance(definition, str) else alarms.canonical(
            alarms.alarm_spec(str(params.get("FunctionName")), alarms.Thresholds.from_params(params)))
        return {"params": params, "canonical": canonical}
    return None


def _refuse_alarm(runtime: KillRuntime, engine: Engine, evidence: Evidence, verdict: AlarmVerdict,
                  report: EventReport) -> str:
    """An alarm change that is not evidence: a recovered alarm is just skipped; anything else (not ours, edited,
    out of scope, no breach) is audited and posted once a day per alarm and kind (a post Slack did not take is
    not "posted": its claim is given back and why goes to ``report.errors``). The kill cap is not touched."""
    name = evidence.event_name
    if verdict.kind == "not-alarm":
        return f"{verdict.reason}: nothing killed"
    # a sentinel names no function: its refusal is filed under the alarm's own ARN
    subject = evidence.functions[0].arn if evidence.functions else \
        f"arn:aws:cloudwatch:{evidence.region}:{evidence.account}:alarm:{name}"
    what = f"{evidence.functions[0].name} NOT killed" if evidence.functions else "nothing killed"
    message = f"Runaway alarm {name} in ALARM, {what}: {verdict.reason}."
    logger.warning("runaway alarm refused", extra={"alarm": name, "function": subject, "kind": verdict.kind,
                                                   "reason": verdict.reason})
    if runtime.mode != "dry-run":
        engine.store.audit(subject, {"policy": POLICY, "mode": "auto", "outcome": "refused", "severity": "high",
                                     "message": message, "detail": verdict.kind, "context": evidence.key})
    claim = hashlib.sha256(f"{evidence.account}|{evidence.region}|{name}|{verdict.kind}".encode()).hexdigest()
    if engine.store.claim(f"refused-alarm#{claim}", NOTE_REPEAT_SECONDS):
        problem = _tell(engine, subject, "", {"outcome": "refused", "message": message, "detail": verdict.reason},
                        f"{name} ({evidence.key})")
        if problem:
            engine.store.release(f"refused-alarm#{claim}")
            report.errors.append(problem)
    return f"alarm {name} refused: {verdict.reason}: nothing killed"


# -- the kill ------------------------------------------------------------------------------------


def _ref(runtime: KillRuntime, function_arn: Any) -> FunctionRef:
    """A function name (the bot's account and home region) or a full ARN (any account: a member's is reached
    through the member role)."""
    if runtime.mode == "off":
        raise KillSwitchError("safetycatch is off (SAFETYCATCH_MODE=off): nothing changed")
    ref = FunctionRef.parse(function_arn.strip() if isinstance(function_arn, str) else function_arn,
                            runtime.bot_account(), runtime.home_region)
    if ref is None:
        raise KillSwitchError(f"{str(function_arn)[:80]!r} is not a Lambda function name or ARN")
    return ref


def _named(runtime: KillRuntime, ref: FunctionRef) -> tuple[str, str]:
    """How messages name the function (with its account when it is a member's), and what ``restore`` takes."""
    where = runtime.account_label(ref.account)
    if not where and ref.region == runtime.home_region:
        return ref.name, ref.name
    return f"{ref.name} ({', '.join(filter(None, [where, ref.region]))})", ref.arn


def _config(runtime: KillRuntime) -> PolicyConfig:
    check = REGISTRY[POLICY]
    return runtime.policy_set.policies.get(POLICY) or PolicyConfig(POLICY, check.default_mode,
                                                                   check.default_severity, check.defaults())


def _refusal(runtime: KillRuntime, snapshot: FunctionSnapshot) -> str:
    """Why this function must never be killed ('' when it may be)."""
    settings = runtime.settings
    glob = next((g for g in settings.never_kill if fnmatch.fnmatchcase(snapshot.name, g)), None)
    if glob:
        return f"it is in never_kill ({glob})"
    if settings.is_own_function(snapshot.arn) or snapshot.arn == _running_function_arn(runtime):
        return "it is one of safetycatch's own functions"
    if snapshot.tagged(settings.exempt_tag):
        return f"it is tagged {settings.exempt_tag}=true"
    if snapshot.tags_unreadable:
        return f"its tags cannot be read, so whether it is exempt is unknown ({snapshot.tags_unreadable})"
    return ""


def _running_function_arn(runtime: KillRuntime) -> str:
    """The exact ARN of the function this code runs in ('' outside Lambda): never killed, whatever its settings."""
    name, region = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), os.environ.get("AWS_REGION", "")
    return f"arn:aws:lambda:{region}:{runtime.bot_account()}:function:{name}" if name and region else ""


def _tell(engine: Engine, function_arn: str, fix_id: str, detail: dict[str, Any], context: str) -> str | None:
    """``Notifier.notify_kill``; None when delivered, else why not (a failure to tell never undoes anything)."""
    try:
        return engine.notifier.notify_kill(function_arn, fix_id, detail, context)
    except Exception as exc:  # noqa: BLE001 - a notification failure never undoes a kill
        return f"notification failed: {describe_error(exc)}"


class _Kill:
    """One kill attempt: shared state of the steps, and how each ends (audit + notify). ``errors``: where a
    notification that was not delivered is reported (the event's report), once."""

    def __init__(self, runtime: KillRuntime, engine: Engine, ref: FunctionRef, reason: str, actor: str,
                 mode: str, errors: list[str] | None = None) -> None:
        self.runtime, self.engine, self.ref, self.mode = runtime, engine, ref, mode
        self.reason, self.actor, self.errors = reason, actor, errors
        self.context = f"{reason[:200]} ({actor})"
        self.name, self.handle = _named(runtime, ref)

    def end(self, outcome: str, message: str, detail: str = "", spec: FixSpec | None = None, fix_id: str = "",
            notify: bool = True) -> Decision:
        finding = Finding(POLICY, self.ref.arn, "critical", message, spec, {"reason": self.reason, "actor": self.actor})
        decision = Decision(finding, self.mode, outcome, detail, fix_id=fix_id)
        problem = _tell(self.engine, self.ref.arn, fix_id if outcome == "fixed" else "",
                        {**decision.to_json(), "reason": self.reason, "actor": self.actor},
                        self.context) if notify else None
        if problem:  # the engine's rule: ``notified`` only when somebody was told
            logger.info("not notified", extra={"function": self.ref.arn, "error": problem})
            if decision.outcome == "notified":
                decision.outcome = "reported"
                decision.detail = "; ".join(filter(None, (detail, "not delivered (see errors)")))
            if self.errors is not None and problem not in self.errors:
                self.errors.append(problem)
        if self.runtime.mode != "dry-run":
            self.engine.store.audit(self.ref.arn, decision.audit_record(self.context))
        return decision


def _kill(runtime: KillRuntime, ref: FunctionRef, reason: str, actor: str, automatic: bool,
          observed_at: datetime | None = None, confirmed: str = "", engine: Engine | None = None,
          errors: list[str] | None = None) -> Decision:
    """One kill, from the fresh read to the audit: held back, already done, dry-run, capped, failed or done."""
    cfg = _config(runtime)
    engine = engine or runtime.engine(ref.account, ref.region)
    store = engine.store
    snapshot = engine.inventory.function(ref)
    if snapshot is None:
        raise KillSwitchError(f"no function {ref.name} in {ref.account} {ref.region}")
    attempt = _Kill(runtime, engine, ref, reason, actor, cfg.mode if automatic else "manual", errors)
    held = _held_back(attempt, snapshot, cfg, automatic)
    if held:
        return held
    lock = store.kill_lock(ref.arn)
    current = engine.inventory.reserved_concurrency(ref)
    settled = _settled(attempt, lock, current, observed_at if automatic else None)
    if settled:
        return settled
    spec, notes = _plan(engine, snapshot, current)
    if runtime.mode == "dry-run":
        return attempt.end("dry-run", f"Runaway loop on {attempt.name}: would throttle it to 0. {notes}".strip(),
                           f"would {spec.action} {spec.params}", spec)
    token = store.claim_kill(ref.arn, lock)
    if token is None:
        return _already(attempt, store.kill_lock(ref.arn) or {})
    capped = _over_cap(attempt, cfg, token, spec) if automatic else None
    if capped:
        return capped
    evidence = f" Evidence {confirmed}." if confirmed else ""
    return _throttle(attempt, spec, lock, token, f"{evidence} {notes}")


def _held_back(attempt: _Kill, snapshot: FunctionSnapshot, cfg: PolicyConfig, automatic: bool) -> Decision | None:
    """Never killed (never_kill, the bot's own, exempt, tags unknown), or an automatic kill the policy mode
    holds back; None when the kill may go on."""
    refusal = _refusal(attempt.runtime, snapshot)
    if refusal:
        return attempt.end("exempt", f"Runaway loop reported on {attempt.name}, NOT killed: {refusal}.", refusal,
                           notify=automatic)
    if automatic and cfg.mode != "auto":
        return attempt.end("notified", f"Runaway loop on {attempt.name}: the {POLICY} policy is in {cfg.mode} mode, "
                           f"so it is NOT killed. Kill it: safetycatch kill {attempt.handle}", f"mode {cfg.mode}")
    return None


def _settled(attempt: _Kill, lock: dict[str, Any] | None, current: int | None,
             observed_at: datetime | None) -> Decision | None:
    """Already killed (or a kill under way), or automatic evidence older than the last restore; else None."""
    if not lock:
        return None
    now = attempt.engine.store.clock()
    if (lock["status"] == "killed" and current == 0) or \
            (lock["status"] == "killing" and now - int(lock.get("since", 0)) < STALE_CLAIM_SECONDS):
        return _already(attempt, lock)
    if observed_at and lock["status"] == "restored" and int(lock.get("since", 0)) > observed_at.timestamp():
        seen = observed_at.astimezone(timezone.utc)
        return attempt.end("notified", f"Runaway loop on {attempt.name} reported for {seen:%H:%M:%S} UTC, before "
                           "it was restored: not killed again.", "evidence predates the last restore")
    return None


def _over_cap(attempt: _Kill, cfg: PolicyConfig, token: str, spec: FixSpec) -> Decision | None:
    """An automatic kill beyond this hour's ``max_kills_per_hour`` in the account: released, told, not killed."""
    store, ref = attempt.engine.store, attempt.ref
    limit = int(cfg.params["max_kills_per_hour"])
    if store.take_change_slot(ref.account, limit, kind="kills"):
        return None
    store.set_kill(ref.arn, token, "released")
    logger.error("kill-switch rate cap reached", extra={"function": ref.arn, "max_kills_per_hour": limit})
    return attempt.end("notified", f"RUNAWAY LOOP on {attempt.name} NOT KILLED: this hour's {limit} kills "
                       f"reached max_kills_per_hour={limit}. Kill it by hand: safetycatch kill {attempt.handle}",
                       f"rate cap: {limit} kills this hour", spec)


def _throttle(attempt: _Kill, spec: FixSpec, lock: dict[str, Any] | None, token: str, notes: str) -> Decision:
    """Store the prior, apply the kill through the gateway, and record it: ``fixed`` or ``failed``."""
    store, ref, name = attempt.engine.store, attempt.ref, attempt.name
    fix_id = store.store_fix(ref.arn, POLICY, spec.to_json())
    if lock and lock.get("fix_id") and lock["status"] == "killed":
        store.mark_fix(str(lock["fix_id"]), "superseded", "applied", reason=f"un-killed outside safetycatch; {fix_id}")
    partial = ""
    try:
        fixes.apply(attempt.engine.gateway, spec)
    except fixes.PartialFix as exc:
        partial = str(exc)
    except (ClientError, BotoCoreError) as exc:
        store.mark_fix(fix_id, "failed", "stored", reason=describe_error(exc))
        store.set_kill(ref.arn, token, "released")
        return attempt.end("failed", f"RUNAWAY LOOP on {name}: the kill FAILED, it is still running "
                           f"({describe_error(exc)}).", describe_error(exc), spec, fix_id)
    store.mark_fix(fix_id, "applied", "stored", **({"reason": partial} if partial else {}))
    store.set_kill(ref.arn, token, "killed", fix_id)
    failed = f" Part of the kill FAILED: {partial}." if partial else ""
    if partial and attempt.errors is not None:  # a mapping left enabled is a failed part of the kill: said loudly
        attempt.errors.append(f"{ref.name}: part of the kill failed: {partial}")
    message = f"Runaway loop stopped: {name} throttled to 0.{notes}{failed} Undo: safetycatch restore {attempt.handle}"
    return attempt.end("fixed", " ".join(message.split()), partial, spec, fix_id)


def _already(attempt: _Kill, lock: dict[str, Any]) -> Decision:
    fix_id = str(lock.get("fix_id") or "")
    since = datetime.fromtimestamp(int(lock.get("since", 0)), timezone.utc).strftime("%H:%M:%S UTC")
    return attempt.end("fixed", f"{attempt.ref.name} is already killed (since {since}); nothing changed.",
                       f"already killed by fix {fix_id or '(in progress)'}", fix_id=fix_id, notify=False)


def _plan(engine: Engine, snapshot: FunctionSnapshot, current: int | None) -> tuple[FixSpec, str]:
    """The kill's fix spec with the exact prior state, read fresh, and a sentence about what it changes."""
    running = [m for m in engine.inventory.function_mappings(snapshot) if m.state in ACTIVE_MAPPING_STATES]
    recursion, why = engine.inventory.recursion_config(snapshot.ref)
    params: dict[str, Any] = {"ReservedConcurrentExecutions": 0, "DisableMappings": [m.uuid for m in running]}
    if recursion == "Allow":
        params["RecursiveLoop"] = "Terminate"
    prior = {"ReservedConcurrentExecutions": current, "RecursiveLoop": recursion,
             "Mappings": [{"UUID": m.uuid, "EventSourceArn": m.source_arn, "State": m.state, "Enabled": True}
                          for m in running]}
    was = "unset" if current is None else str(current)
    loop = {"Allow": "RecursiveLoop Allow -> Terminate.", "Terminate": "RecursiveLoop already Terminate."}.get(
        recursion, f"RecursiveLoop unavailable ({why}).")
    notes = f"Reserved concurrency was {was}; {len(running)} event source mapping(s) disabled; {loop}"
    return FixSpec("kill", snapshot.arn, params, prior), notes


def _active_kill(engine: Engine, ref: FunctionRef, fix_id: str | None) -> dict[str, Any] | None:
    store = engine.store
    if fix_id:
        fix = store.get_fix(fix_id)
        if fix is None or fix.get("function") != ref.arn or fix["spec"].get("action") != "kill":
            return None
        return fix if fix["status"] in RESTORABLE else None
    lock = store.kill_lock(ref.arn)
    if lock and lock["status"] == "killed" and lock.get("fix_id"):
        fix = store.get_fix(str(lock["fix_id"]))
        if fix and fix["status"] in RESTORABLE:
            return fix
    return next((f for f in store.fixes_for(ref.arn)
                 if f["spec"].get("action") == "kill" and f["status"] in RESTORABLE), None)


def _rearm(engine: Engine, name: str, actor: str) -> str:
    """Set the runaway alarm ``name`` (the function's own, or a sentinel) back to OK if it is in ALARM, so a loop
    that resumes after a restore, or a kill that failed, makes a fresh ALARM change instead of staying silent."""
    try:
        if engine.inventory.alarm_state(name) != "ALARM":
            return ""
        engine.gateway.set_alarm_state(name, "OK", f"re-armed by safetycatch restore ({actor[:100]})")
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not re-arm the runaway alarm", extra={"alarm": name, "error": describe_error(exc)})
        return f"; alarm {name} NOT re-armed ({describe_error(exc)})"
    return f"; alarm {name} re-armed (OK)"


def _rearm_restored(runtime: KillRuntime, engine: Engine, ref: FunctionRef, actor: str) -> str:
    """After a restore: the function's own runaway alarm back to OK if it is in ALARM; in sentinel mode (no alarm of
    its own) the sentinels in ALARM, whose contributors keep their state: a loop that goes on then makes a fresh
    ALARM change of the sentinel, and is confirmed and killed again, instead of staying silent in ALARM."""
    rearmed = _rearm(engine, alarms.alarm_name(ref.name), actor)
    if rearmed or not _config(runtime).params.get("sentinel"):
        return rearmed
    return "".join(_rearm(engine, f"{sentinel.PREFIX}{metric.lower()}", actor) for metric, _, _ in sentinel.WATCHED)


def _describe_prior(spec: FixSpec) -> str:
    value = spec.prior.get("ReservedConcurrentExecutions")
    concurrency = "reserved concurrency unset again" if value is None else f"reserved concurrency back to {value}"
    count = len(spec.prior.get("Mappings", []))
    loop = f"RecursiveLoop back to {spec.prior['RecursiveLoop']}" if spec.params.get("RecursiveLoop") else \
        "RecursiveLoop unchanged"
    return f"{concurrency}, {count} mapping{'s' if count != 1 else ''} re-enabled, {loop}"

