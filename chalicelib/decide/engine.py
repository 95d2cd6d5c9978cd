"""Change → snapshot → findings → decision: the one engine behind the event handler and the sweep.

``Engine.handle`` serves one CloudTrail change (re-reads the function; never trusts the event) and
``Engine.sweep`` a whole region. Both evaluate the enabled policies and decide per policy mode:

* ``auto``     store the prior value, apply the fix through the gateway → ``fixed`` (or ``failed``)
* ``approve``  record a PENDING approval in the state table → ``pending-approval``
* ``notify``   record and log → ``notified``

A function tagged ``<exempt_tag>=true`` (or matched by a policy's ``exempt``) → ``exempt``; the global
dry-run mode → ``dry-run`` with zero writes; a sweep without ``--fix`` → ``reported``.

Example:
    engine = Engine(policy_set, inventory, Gateway(clients), store)
    report = engine.sweep(act=False)
    report.to_json()["functions_scanned"]
    # -> 12
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.act import fixes
from chalicelib.act.gateway import Gateway
from chalicelib.checks import Check
from chalicelib.core.aws import describe_error
from chalicelib.core.log import logger
from chalicelib.core.model import (
    AccountFacts,
    Decision,
    Finding,
    FunctionSnapshot,
    LogSearch,
    MetricQuery,
    effective_severity,
)
from chalicelib.decide import limits
from chalicelib.exports.securityhub import SecurityHubSink, SecurityHubUnavailable
from chalicelib.intake.events import Change
from chalicelib.inventory import Inventory
from chalicelib.policy.settings import PolicyConfig, PolicySet
from chalicelib.store.state import InvokerIndex, StateStore

Progress = Callable[[int, int | None], None]
TOLD = ("notified", "fixed", "pending-approval", "failed")  # outcomes a human hears about
NOTE_REPEAT_SECONDS = 24 * 3600  # a notifier tells the same notify-only finding (or refusal) once a day at most
APPLY_CLAIM_SECONDS = 300  # > the bot's Lambda timeout (60 s): outlives any concurrent twin's read-to-write


class Notifier(Protocol):
    """Tells humans about decisions on one function (Slack when configured, else the log)."""

    def notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> str | None:
        """Deliver the decisions; None when delivered, else why not (one line: it goes to ``errors``)."""
        ...

    def notify_kill(self, function_arn: str, fix_id: str, detail: dict[str, Any], context: str) -> str | None:
        """A kill-switch decision. ``fix_id`` is the kill's fix record (what a Restore button carries); ''
        when nothing was changed (never_kill, rate cap, notify mode, refused evidence): ``detail["outcome"]`` says
        which. None when delivered, else why not."""
        ...


NOT_CONFIGURED = "Slack is not configured (set SAFETYCATCH_SLACK_SECRET and SAFETYCATCH_SLACK_CHANNEL)"


class LogNotifier:
    """Without Slack, decisions only reach the log: nobody was told, so ``notify`` says why not."""

    def __init__(self, reason: str = NOT_CONFIGURED) -> None:
        self.reason = reason

    def notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> str | None:
        for d in decisions:
            logger.info("notify", extra={"function": snapshot.arn, "policy": d.finding.policy,
                                         "outcome": d.outcome, "context": context})
        return f"not notified: {self.reason}"

    def notify_kill(self, function_arn: str, fix_id: str, detail: dict[str, Any], context: str) -> str | None:
        log = logger.info if fix_id and detail.get("outcome") == "fixed" else logger.error  # not killed: loudly
        log("kill-switch", extra={"function": function_arn, "fix_id": fix_id, "outcome": detail.get("outcome"),
                                  "text": detail.get("message"), "detail": detail.get("detail"), "context": context})
        return f"not notified: {self.reason}"


@dataclass
class EventReport:
    """What the event handler did with one event (``replay --format json`` prints these)."""

    event_id: str
    event_name: str
    function: str | None = None
    skipped: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)

    @classmethod
    def merge(cls, reports: list[EventReport]) -> EventReport:
        """One report for one event handled in several regions (an IAM change concerns every region's
        functions): skipped only when every region skipped it."""
        acted = [r for r in reports if not r.skipped]
        first = (acted or reports)[0]
        merged = cls(first.event_id, first.event_name, first.function, None if acted else first.skipped)
        for report in acted:
            merged.decisions.extend(report.decisions)
            merged.functions.extend(report.functions)
        merged.errors = [e for r in reports for e in r.errors]
        return merged

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_name": self.event_name, "function": self.function,
                "skipped": self.skipped, "findings": [d.to_json() for d in self.decisions],
                "errors": list(self.errors), "functions": list(self.functions)}


@dataclass
class ScanReport:
    account: str
    region: str
    functions_scanned: int = 0
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    scan_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        return {"scan_id": self.scan_id, "account": self.account, "region": self.region,
                "scopes": [{"account": self.account, "region": self.region}],
                "functions_scanned": self.functions_scanned,
                "findings": [d.to_json() for d in self.decisions], "errors": list(self.errors)}


class Engine:
    """Evaluates policies over snapshots and carries out decisions for one account and region."""

    def __init__(self, policy_set: PolicySet, inventory: Inventory, gateway: Gateway, store: StateStore,
                 mode: str = "enforce", notifier: Notifier | None = None) -> None:
        self.policy_set, self.inventory, self.gateway, self.store = policy_set, inventory, gateway, store
        self.mode = mode
        self.notifier = notifier or LogNotifier()
        self.gateway.dry_run = self.gateway.dry_run or mode == "dry-run"
        self.sink: SecurityHubSink | None = None  # SAFETYCATCH_SECURITYHUB=on (see Runtime.engine)
        self.unevaluated: set[str] = set()  # policies that could not run in the last evaluate (facet, error)
        if inventory.apis.index is None:  # the APIs that invoke a function through a role (chalicelib/store/state.py)
            inventory.apis.index = InvokerIndex(store.table, store.clock)

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, snapshots: list[FunctionSnapshot], errors: list[str], only: Iterable[str] = ()
                 ) -> dict[str, list[tuple[Finding, PolicyConfig]]]:
        """Findings per function ARN. Facets are read once, in bulk, only for checks in scope
        (``only``: just these policies, for a change that can affect no other).

        Checks that read other checks' findings (``Check.after``, e.g. the kill-switch alarm that is
        sharper on a recursive-trigger finding) run in a second phase, scoped with ``snapshot.flagged_by``
        filled in, so their facets are read only for the functions that end up in their scope.
        """
        only = set(only)
        self.unevaluated = set()
        enabled = [(c, cfg) for c, cfg in self.policy_set.enabled() if not only or c.id in only]
        results: dict[str, list[tuple[Finding, PolicyConfig]]] = defaultdict(list)
        for phase in ([c for c in enabled if not c[0].after], [c for c in enabled if c[0].after]):
            if phase:
                self._evaluate_phase(phase, snapshots, errors, results)
        return results

    def _evaluate_phase(self, checks: list[tuple[Check, PolicyConfig]], snapshots: list[FunctionSnapshot],
                        errors: list[str], results: dict[str, list[tuple[Finding, PolicyConfig]]]) -> None:
        plan: dict[str, list[tuple[Check, PolicyConfig]]] = defaultdict(list)
        needs: dict[str, dict[str, FunctionSnapshot]] = defaultdict(dict)
        queries: dict[str, set[MetricQuery]] = defaultdict(set)
        searches: dict[str, LogSearch] = {}
        for snapshot in snapshots:
            for check, cfg in checks:
                if check.in_scope(snapshot, cfg.params):
                    plan[snapshot.arn].append((check, cfg))
                    for facet in check.needs:
                        needs[facet][snapshot.arn] = snapshot
                    queries[snapshot.arn].update(check.metrics(cfg.params))
                    if (search := check.log_search(cfg.params)) is not None:
                        searches[snapshot.arn] = search
        failed = self._load_facets(needs, queries, searches, errors)
        account = self.inventory.account_facts() if needs.get("account") else AccountFacts()
        for snapshot in snapshots:
            for check, cfg in plan.get(snapshot.arn, []):
                if check.needs & set(failed):
                    self.unevaluated.add(check.id)
                    continue
                try:
                    found = check.evaluate(snapshot, cfg.params, account)
                except Exception as exc:  # noqa: BLE001 - one broken check must not stop the others
                    errors.append(f"{check.id} failed on {snapshot.name}: {describe_error(exc)}")
                    self.unevaluated.add(check.id)
                    continue
                results[snapshot.arn].extend((dataclasses.replace(f, severity=effective_severity(
                    f.severity, cfg.severity)), cfg) for f in found)
        self._follow_up(snapshots, plan, results, queries, searches, account, errors)
        for snapshot in snapshots:
            snapshot.flagged_by.update(f.policy for f, _ in results.get(snapshot.arn, []))

    def _load_facets(self, needs: dict[str, dict[str, FunctionSnapshot]], queries: dict[str, set[MetricQuery]],
                     searches: dict[str, LogSearch], errors: list[str]) -> dict[str, str]:
        """Read each needed facet once, all at once (a later phase re-reads only metrics and logs, whose queries
        differ); the account facts are a facet too, read with the others. Inside one event a transient error
        raises, so that Lambda retries the event (``Inventory.transient_raises``; chalicelib/core/aws.py, the rule)."""
        wanted = {facet: [s for s in group.values() if facet not in s.loaded or facet in ("metrics", "logs")]
                  for facet, group in needs.items()}
        failed = self.inventory.load({facet: group for facet, group in wanted.items() if group}, queries, searches)
        errors.extend(_unread(facet, reason, needs.get(facet, {})) for facet, reason in sorted(failed.items()))
        return failed

    def _follow_up(self, snapshots: list[FunctionSnapshot], plan: dict[str, list[tuple[Check, PolicyConfig]]],
                   results: dict[str, list[tuple[Finding, PolicyConfig]]], queries: dict[str, set[MetricQuery]],
                   searches: dict[str, LogSearch], account: AccountFacts, errors: list[str]) -> None:
        """Read a check's ``finding_needs`` for the functions it flagged only, then run it again on them."""
        again: list[tuple[FunctionSnapshot, Check, PolicyConfig]] = []
        needs: dict[str, dict[str, FunctionSnapshot]] = defaultdict(dict)
        for snapshot in snapshots:
            flagged = {f.policy for f, _ in results.get(snapshot.arn, [])}
            for check, cfg in plan.get(snapshot.arn, []):
                missing = check.finding_needs - snapshot.loaded
                if check.id in flagged and missing:
                    again.append((snapshot, check, cfg))
                    for facet in missing:
                        needs[facet][snapshot.arn] = snapshot
        if not again:
            return
        self._load_facets(needs, queries, searches, errors)
        for snapshot, check, cfg in again:
            try:
                found = check.evaluate(snapshot, cfg.params, account)
            except Exception as exc:  # noqa: BLE001 - one broken check must not stop the others
                errors.append(f"{check.id} failed on {snapshot.name}: {describe_error(exc)}")
                continue
            kept = [(f, c) for f, c in results[snapshot.arn] if f.policy != check.id]
            results[snapshot.arn] = kept + [(dataclasses.replace(f, severity=effective_severity(
                f.severity, cfg.severity)), cfg) for f in found]

    # -- decisions -------------------------------------------------------------------------------

    def is_exempt(self, snapshot: FunctionSnapshot, cfg: PolicyConfig) -> bool:
        return snapshot.tagged(self.policy_set.settings.exempt_tag) or cfg.exempts(snapshot.name)

    def decide(self, snapshot: FunctionSnapshot, finding: Finding, cfg: PolicyConfig, act: bool,
               context: str = "", actor: str = "") -> Decision:
        """Carry out one finding according to its policy mode; every decision is audited. ``actor``: who made
        the change that led here (the CloudTrail identity), named if the fix turns into a fight."""
        decision = self._choose(snapshot, finding, cfg, act, actor)
        if act or decision.outcome in ("exempt", "muted"):
            self._audit(snapshot, decision, context)
        return decision

    def _decide_all(self, snapshot: FunctionSnapshot, found: list[tuple[Finding, PolicyConfig]], act: bool,
                    context: str, errors: list[str], actor: str = "") -> list[Decision]:
        """Decide every finding on one function, tell people (with ``act``), then audit what really happened
        (``notified`` only when the notification was delivered)."""
        decisions = [self._choose(snapshot, f, cfg, act, actor) for f, cfg in found]
        if act:
            self._notify(snapshot, decisions, context, errors)
        for decision in decisions:
            if act or decision.outcome in ("exempt", "muted"):
                self._audit(snapshot, decision, context)
        return decisions

    def _choose(self, snapshot: FunctionSnapshot, finding: Finding, cfg: PolicyConfig, act: bool,
                actor: str = "") -> Decision:
        decision = Decision(finding, cfg.mode, "reported")
        mute = self.policy_set.mutes.match(finding.policy, snapshot.ref, self.store.clock())
        if snapshot.tags_unreadable and act:  # fail closed: exemption and scope are unknown
            decision.outcome, decision.detail = "failed", _tags_unknown(snapshot)
        elif mute is not None:
            decision.outcome, decision.detail = "muted", mute.describe()
        elif self.is_exempt(snapshot, cfg):
            decision.outcome, decision.detail = "exempt", "function is exempt; nothing changed"
        elif not act:
            return decision
        elif cfg.mode == "notify" or finding.fix is None:
            decision.outcome = "notified"
        elif self.mode == "dry-run":
            verb = "apply" if cfg.mode == "auto" else "ask approval for"
            decision.outcome, decision.detail = "dry-run", f"would {verb} {finding.fix.action} {finding.fix.params}"
        elif cfg.mode == "approve":
            self._request_approval(snapshot, finding, decision)
        elif note := self._needs_a_human(snapshot, finding, actor):
            self._request_approval(snapshot, finding, decision, note=note)
        elif not self._first_to_apply(snapshot, finding):
            decision.detail = "a concurrent event about the same change is applying this fix; nothing more to do"
        else:
            self._apply_automatic(snapshot, finding, decision, actor)
        return decision

    def _needs_a_human(self, snapshot: FunctionSnapshot, finding: Finding, actor: str) -> str:
        """Why an ``auto`` fix must wait for an approval this time ('' when it need not): too large a share of the
        account, or a fight (``limits``)."""
        settings = self.policy_set.settings
        return limits.over_automatic_bound(settings, finding) or \
            limits.fight(self.store, settings, snapshot, finding, actor)

    def _apply_automatic(self, snapshot: FunctionSnapshot, finding: Finding, decision: Decision, actor: str) -> None:
        """Apply an ``auto`` fix. An automatic reservation first claims its share of the account's total
        (``limits.claim_reservation``, atomic: two instances at once cannot both pass); over the total it waits
        for approval; a fix not made gives the share back."""
        note, held = limits.claim_reservation(self.store, self.policy_set.settings, finding)
        if note:
            self._request_approval(snapshot, finding, decision, note=note)
            return
        try:
            self._apply(finding, decision, automatic=True, trigger=actor)
        finally:
            if held is not None and decision.outcome != "fixed":
                limits.record_reservation(self.store, finding.function_arn, held)

    def _first_to_apply(self, snapshot: FunctionSnapshot, finding: Finding) -> bool:
        """True for the one event that applies this fix to the function as it was read.

        Several events about one function (a deploy's UpdateFunctionCode, UpdateFunctionConfiguration and
        TagResource) run concurrently under the bot's reserved concurrency and may all read the function before
        any of them fixes it; each would then write the same fix. The claim (a conditional put in the state
        table, atomic in DynamoDB) lets exactly one of them write. It is keyed on what was read (the function's
        RevisionId and the prior value the fix replaces), so a later deploy (a new revision) is decided afresh;
        it expires after ``APPLY_CLAIM_SECONDS``, longer than one invocation can take between its read and its
        write. An approval needs no claim: ``_request_approval`` reuses a pending one.
        """
        assert finding.fix is not None
        fix = finding.fix
        spec = json.dumps([finding.policy, fix.action, fix.params, fix.prior], sort_keys=True, default=str)
        key = hashlib.sha256(f"{snapshot.arn}|{snapshot.revision_id}|{spec}".encode()).hexdigest()
        return self.store.claim(f"apply#{key}", APPLY_CLAIM_SECONDS)

    def _request_approval(self, snapshot: FunctionSnapshot, finding: Finding, decision: Decision,
                          note: str = "") -> None:
        """A PENDING approval (or the one already open for the same fix); ``note`` says why a human must decide."""
        assert finding.fix is not None
        decision.detail = note
        spec = finding.fix.to_json()
        for existing in self.store.approvals("PENDING", snapshot.arn):
            if existing["expires_at"] <= self.store.clock():  # expired: ask afresh rather than reuse it
                self.store.transition_approval(existing["id"], "PENDING", "EXPIRED")
                continue
            if existing["policy"] == finding.policy and existing["spec"] == spec:
                decision.outcome, decision.approval_id = "pending-approval", existing["id"]
                decision.detail = f"{note} Already awaiting approval.".strip()
                return
        approval = self.store.create_approval(
            snapshot.arn, finding.policy, spec, self.policy_set.settings.approval_ttl_hours,
            severity=finding.severity, message=f"{note} {finding.message}".strip())
        decision.outcome, decision.approval_id = "pending-approval", approval["id"]
        if not self.store.durable:
            decision.detail = " ".join(filter(None, (note, "Kept in memory only (no SAFETYCATCH_TABLE): this approval "
                                                     "will not outlive the run.")))

    def apply_approved(self, snapshot: FunctionSnapshot, finding: Finding, cfg: PolicyConfig,
                       context: str) -> Decision:
        """Apply a fix a human approved (re-evaluated on a fresh snapshot by the caller); audited.

        Example:
            engine.apply_approved(snapshot, finding, cfg, "approved by U0123 (approval 5f1c...)").outcome
            # -> 'fixed'
        """
        decision = Decision(finding, cfg.mode, "reported")
        if snapshot.tags_unreadable:
            decision.outcome, decision.detail = "failed", _tags_unknown(snapshot)
        elif self.is_exempt(snapshot, cfg):
            decision.outcome, decision.detail = "exempt", "function is exempt; nothing changed"
        elif self.mode != "enforce":
            decision.outcome, decision.detail = "dry-run", f"safetycatch is in {self.mode} mode; nothing changed"
        else:
            self._apply(finding, decision, automatic=False)
        self._audit(snapshot, decision, context)
        return decision

    def _apply(self, finding: Finding, decision: Decision, automatic: bool, trigger: str = "") -> None:
        """Store the prior, apply, record the outcome. ``automatic`` changes count against the hourly caps
        (``limits.take_slots``); a fix a human approved does not."""
        assert finding.fix is not None
        if automatic and (refused := limits.take_slots(self.store, self.policy_set.settings, self.inventory.account,
                                                        finding)):
            decision.outcome, decision.detail = "notified", refused
            logger.warning("blast-radius cap reached", extra={"function": finding.function_arn, "detail": refused})
            return
        fix_id = self.store.store_fix(finding.function_arn, finding.policy, finding.fix.to_json(),
                                      trigger=trigger[:300], **fixes.record(finding.fix))
        decision.fix_id = fix_id
        try:
            fixes.apply(self.gateway, finding.fix)
        except (ClientError, BotoCoreError) as exc:
            self.store.mark_fix(fix_id, "failed", "stored", reason=describe_error(exc))
            decision.outcome, decision.detail = "failed", describe_error(exc)
            return
        self.store.mark_fix(fix_id, "applied", "stored")
        decision.outcome = "fixed"

    def _audit(self, snapshot: FunctionSnapshot, decision: Decision, context: str) -> None:
        record = decision.audit_record(context)
        logger.info("decision", extra={"function": snapshot.arn, "text": decision.finding.message,
                                       **{k: v for k, v in record.items() if k != "message"}})
        if self.mode != "dry-run":
            self.store.audit(snapshot.arn, record)

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, change: Change) -> EventReport:
        """Serve one change: resolve and re-read the function, evaluate, decide, notify. A read that fails
        transiently raises (see :func:`chalicelib.core.aws.is_transient`); a permanent one is recorded in ``errors``."""
        report = EventReport(change.event_id, change.event_name)
        self.inventory.transient_raises = True
        self.inventory.apis.writes_index = True  # what it reads of an API keeps the invoker index true
        refs = self.inventory.resolve_all(change)
        if not refs:
            report.skipped = ("no function is affected by this change" if change.policies else
                              "the function (or the mapping / integration naming it) no longer exists")
            return report
        report.function, report.functions = refs[0].arn, [ref.arn for ref in refs]
        local = [ref for ref in refs if ref.account == self.inventory.account]
        if not local:
            report.skipped = f"function in account {refs[0].account}, not this bot's account {self.inventory.account}"
            return report
        local = [ref for ref in local if ref.region == self.inventory.region]
        if not local:
            report.skipped = f"function in region {refs[0].region}, event from {self.inventory.region}"
            return report
        snapshots = self.inventory.functions(local)
        if not snapshots:
            report.skipped = "the function no longer exists"
            return report
        snapshots = readable(snapshots, report.errors)
        found = self.evaluate(snapshots, report.errors, only=change.policies) if snapshots else {}
        context = f"{change.event_name} by {change.actor or 'unknown'} ({change.event_id})"
        for snapshot in snapshots:
            report.decisions.extend(self._decide_all(snapshot, found.get(snapshot.arn, []), True, context,
                                                     report.errors, actor=change.identity or change.actor))
        self._export(snapshots, report.decisions, change.policies, report.errors)
        return report

    def sweep(self, act: bool = False, progress: Progress | None = None, batch: int = 500,
              select: Callable[[FunctionSnapshot], bool] | None = None) -> ScanReport:
        """Evaluate every function of the region (or those ``select`` keeps); with ``act`` carry out decisions as
        the bot would."""
        report = ScanReport(self.inventory.account, self.inventory.region)
        self.inventory.apis.writes_index = act  # a sweep that acts writes the invoker index (a plain scan does not)
        facets = {facet for check, _ in self.policy_set.enabled() for facet in check.needs}
        self.inventory.read_ahead(facets)
        functions = self.inventory.all_functions()  # listed one batch ahead (Inventory.function_batches)
        for listed in _batches(functions if select is None else filter(select, functions), batch):
            snapshots = readable(listed, report.errors)
            findings = self.evaluate(snapshots, report.errors) if snapshots else {}
            done = len(report.decisions)
            for snapshot in snapshots:
                report.decisions.extend(self._decide_all(snapshot, findings.get(snapshot.arn, []), act, "scan",
                                                         report.errors))
            if act:  # only what was evaluated: a function whose tags are unreadable is neither found nor resolved
                self._export(snapshots, report.decisions[done:], (), report.errors)
            report.functions_scanned += len(listed)
            if progress:
                progress(report.functions_scanned, None)
        if act and "routes" in facets:
            self._finish_invoker_index(report.errors)
        return report

    def _finish_invoker_index(self, errors: list[str]) -> None:
        """Wait for the read-ahead of every API (it writes the invoker index) even when no function needed routes:
        a Lambda container is frozen once the handler returns, and the index must not be left half-written."""
        try:
            self.inventory.apis.route_index()
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"could not read the APIs for the invoker index: {describe_error(exc)}")

    def _export(self, snapshots: list[FunctionSnapshot], decisions: list[Decision], only: Iterable[str],
                errors: list[str]) -> None:
        """Hand the decisions to the Security Hub sink (when on, and only when acting in enforce mode). Only the
        policies that really ran can resolve an earlier finding; a sink failure never undoes a decision."""
        if self.sink is None or self.mode != "enforce" or not snapshots:
            return
        only = set(only)
        ran = {c.id for c, _ in self.policy_set.enabled() if not only or c.id in only} - self.unevaluated
        try:
            self.sink.publish([d.to_json() for d in decisions], {s.arn: set(ran) for s in snapshots})
        except SecurityHubUnavailable as exc:
            errors.append(str(exc))  # in the report (and the event's log line), not a raw warning on a terminal
            logger.info("security hub export failed", extra={"error": str(exc)})

    def _notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str,
                errors: list[str]) -> None:
        """Tell people about what needs telling; an undelivered ``notified`` becomes ``reported`` and the
        reason goes to ``errors`` once (never a raw log line on an operator's terminal)."""
        if not any(d.outcome in TOLD for d in decisions):
            return
        try:
            problem = self.notifier.notify(snapshot, decisions, context)
        except Exception as exc:  # noqa: BLE001 - a notification failure never undoes a decision
            problem = f"notification failed: {describe_error(exc)}"
        if problem is None:
            return
        logger.info("not notified", extra={"function": snapshot.arn, "error": problem})
        for decision in decisions:
            if decision.outcome == "notified":
                decision.outcome = "reported"
                decision.detail = "; ".join(filter(None, (decision.detail, "not delivered (see errors)")))
        if problem not in errors:
            errors.append(problem)


def readable(snapshots: list[FunctionSnapshot], errors: list[str]) -> list[FunctionSnapshot]:
    """The snapshots whose tags were read; each other one becomes an error line and is not evaluated (its tags
    decide exemption, ``critical`` and kill-switch scope, so nothing may be decided on it)."""
    for snapshot in snapshots:
        if snapshot.tags_unreadable:
            errors.append(f"{snapshot.name}: {_tags_unknown(snapshot)}")
    return [s for s in snapshots if not s.tags_unreadable]


def _tags_unknown(snapshot: FunctionSnapshot) -> str:
    return f"tags unreadable ({snapshot.tags_unreadable}): not evaluated, nothing changed"


def _batches(items: Iterable[FunctionSnapshot], size: int) -> Iterable[list[FunctionSnapshot]]:
    batch: list[FunctionSnapshot] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _unread(facet: str, reason: str, snapshots: dict[str, FunctionSnapshot], shown: int = 20) -> str:
    """A facet AWS would not give (after botocore's retries), and the functions whose checks of it did not run:
    never a silent "no finding".

    Example:
        >>> _unread("routes", "TooManyRequestsException: Too Many Requests", {})
        'could not read routes: TooManyRequestsException: Too Many Requests'
    """
    names = sorted(s.name for s in snapshots.values())
    if not names:
        return f"could not read {facet}: {reason}"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (f"could not read {facet}: {reason}; its checks did not run on {len(names)} "
            f"function{'s' if len(names) != 1 else ''}: {', '.join(names[:shown])}{more}")
