"""Change → snapshot → findings → decision: the one engine behind the event handler and the sweep.

``Engine.handle`` serves one CloudTrail change (re-reads the function; never trusts the event) and
``Engine.sweep`` a whole region. Both evaluate the enabled policies and decide per policy mode:

* ``auto``     store the prior value, apply the fix through the gateway → ``fixed`` (or ``failed``)
* ``approve``  record a PENDING approval in the state table → ``pending-approval``
* ``notify``   record and log → ``notified``

A function tagged ``<exempt_tag>=true`` (or matched by a policy's ``exempt``) → ``exempt``; the global
dry-run mode → ``dry-run`` with zero writes; a sweep without ``--fix`` → ``reported``.

Example:
    >>> engine = Engine(policy_set, inventory, Gateway(clients), store)
    >>> report = engine.sweep(act=False)
    >>> report.to_json()["functions_scanned"]
    12
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import fixes
from chalicelib.checks import Check
from chalicelib.events import Change
from chalicelib.gateway import Gateway, WriteCapReached
from chalicelib.inventory import Inventory
from chalicelib.log import logger
from chalicelib.model import AccountFacts, Decision, Finding, FunctionSnapshot, MetricQuery
from chalicelib.settings import PolicyConfig, PolicySet
from chalicelib.state import StateStore

Progress = Callable[[int, Optional[int]], None]


class Notifier(Protocol):
    """Tells humans about decisions on one function (Slack when configured, else the log)."""

    def notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> None: ...


class LogNotifier:
    def notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> None:
        for d in decisions:
            logger.info("notify", extra={"function": snapshot.arn, "policy": d.finding.policy,
                                         "outcome": d.outcome, "context": context})


@dataclass
class EventReport:
    """What the event handler did with one event (``replay --format json`` prints these)."""

    event_id: str
    event_name: str
    function: Optional[str] = None
    skipped: Optional[str] = None
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "event_name": self.event_name, "function": self.function,
                "skipped": self.skipped, "findings": [d.to_json() for d in self.decisions],
                "errors": list(self.errors)}


@dataclass
class ScanReport:
    account: str
    region: str
    functions_scanned: int = 0
    decisions: list[Decision] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account, "region": self.region, "functions_scanned": self.functions_scanned,
                "findings": [d.to_json() for d in self.decisions], "errors": list(self.errors)}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {str(error.get('Message', ''))[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class Engine:
    """Evaluates policies over snapshots and carries out decisions for one account and region."""

    def __init__(self, policy_set: PolicySet, inventory: Inventory, gateway: Gateway, store: StateStore,
                 mode: str = "enforce", notifier: Optional[Notifier] = None) -> None:
        self.policy_set, self.inventory, self.gateway, self.store = policy_set, inventory, gateway, store
        self.mode = mode
        self.notifier = notifier or LogNotifier()
        self.gateway.dry_run = self.gateway.dry_run or mode == "dry-run"

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, snapshots: list[FunctionSnapshot], errors: list[str]
                 ) -> dict[str, list[tuple[Finding, PolicyConfig]]]:
        """Findings per function ARN. Facets are read once, in bulk, only for checks in scope."""
        enabled = self.policy_set.enabled()
        plan: dict[str, list[tuple[Check, PolicyConfig]]] = defaultdict(list)
        needs: dict[str, dict[str, FunctionSnapshot]] = defaultdict(dict)
        queries: dict[str, set[MetricQuery]] = defaultdict(set)
        for snapshot in snapshots:
            for check, cfg in enabled:
                if check.in_scope(snapshot, cfg.params):
                    plan[snapshot.arn].append((check, cfg))
                    for facet in check.needs:
                        needs[facet][snapshot.arn] = snapshot
                    queries[snapshot.arn].update(check.metrics(cfg.params))
        failed: dict[str, str] = {}
        for facet in sorted(set(needs) - {"account"}):
            try:
                self.inventory.load({facet: list(needs[facet].values())}, queries)
            except (ClientError, BotoCoreError) as exc:
                failed[facet] = _reason(exc)
                errors.append(f"could not read {facet}: {failed[facet]}")
        account = self.inventory.account_facts() if needs.get("account") else AccountFacts()
        results: dict[str, list[tuple[Finding, PolicyConfig]]] = defaultdict(list)
        for snapshot in snapshots:
            for check, cfg in plan.get(snapshot.arn, []):
                if check.needs & set(failed):
                    continue
                try:
                    found = check.evaluate(snapshot, cfg.params, account)
                except Exception as exc:  # noqa: BLE001 - one broken check must not stop the others
                    errors.append(f"{check.id} failed on {snapshot.name}: {_reason(exc)}")
                    continue
                results[snapshot.arn].extend((dataclasses.replace(f, severity=cfg.severity), cfg) for f in found)
        return results

    # -- decisions -------------------------------------------------------------------------------

    def is_exempt(self, snapshot: FunctionSnapshot, cfg: PolicyConfig) -> bool:
        tag = self.policy_set.settings.exempt_tag
        return snapshot.tags.get(tag, "").strip().lower() == "true" or cfg.exempts(snapshot.name)

    def decide(self, snapshot: FunctionSnapshot, finding: Finding, cfg: PolicyConfig, act: bool,
               context: str = "") -> Decision:
        """Carry out one finding according to its policy mode; every decision is audited."""
        decision = Decision(finding, cfg.mode, "reported")
        if self.is_exempt(snapshot, cfg):
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
        else:
            self._apply(finding, decision)
        self._audit(snapshot, decision, context)
        return decision

    def _request_approval(self, snapshot: FunctionSnapshot, finding: Finding, decision: Decision) -> None:
        assert finding.fix is not None
        spec = finding.fix.to_json()
        for existing in self.store.approvals("PENDING", snapshot.arn):
            if existing["expires_at"] <= self.store.clock():  # expired: ask afresh rather than reuse it
                self.store.transition_approval(existing["id"], "PENDING", "EXPIRED")
                continue
            if existing["policy"] == finding.policy and existing["spec"] == spec:
                decision.outcome, decision.approval_id = "pending-approval", existing["id"]
                decision.detail = "already awaiting approval"
                return
        approval = self.store.create_approval(
            snapshot.arn, finding.policy, spec, self.policy_set.settings.approval_ttl_hours,
            severity=finding.severity, message=finding.message)
        decision.outcome, decision.approval_id = "pending-approval", approval["id"]

    def apply_approved(self, snapshot: FunctionSnapshot, finding: Finding, cfg: PolicyConfig,
                       context: str) -> Decision:
        """Apply a fix a human approved (re-evaluated on a fresh snapshot by the caller); audited.

        Example:
            >>> engine.apply_approved(snapshot, finding, cfg, "approved by U0123 (approval 5f1c...)").outcome
            'fixed'
        """
        decision = Decision(finding, cfg.mode, "reported")
        if self.is_exempt(snapshot, cfg):
            decision.outcome, decision.detail = "exempt", "function is exempt; nothing changed"
        elif self.mode != "enforce":
            decision.outcome, decision.detail = "dry-run", f"safetycatch is in {self.mode} mode; nothing changed"
        else:
            self._apply(finding, decision)
        self._audit(snapshot, decision, context)
        return decision

    def _apply(self, finding: Finding, decision: Decision) -> None:
        assert finding.fix is not None
        fix_id = self.store.store_fix(finding.function_arn, finding.policy, finding.fix.to_json())
        decision.fix_id = fix_id
        try:
            fixes.apply(self.gateway, finding.fix)
        except WriteCapReached as exc:
            self.store.mark_fix(fix_id, "skipped", "stored", reason=str(exc))
            decision.outcome, decision.detail = "notified", f"not applied: {exc}"
            return
        except (ClientError, BotoCoreError) as exc:
            self.store.mark_fix(fix_id, "failed", "stored", reason=_reason(exc))
            decision.outcome, decision.detail = "failed", _reason(exc)
            return
        self.store.mark_fix(fix_id, "applied", "stored")
        decision.outcome = "fixed"

    def _audit(self, snapshot: FunctionSnapshot, decision: Decision, context: str) -> None:
        record = {"policy": decision.finding.policy, "mode": decision.mode, "outcome": decision.outcome,
                  "severity": decision.finding.severity, "message": decision.finding.message,
                  "detail": decision.detail, "context": context, "approval_id": decision.approval_id,
                  "fix_id": decision.fix_id}
        logger.info("decision", extra={"function": snapshot.arn, "text": decision.finding.message,
                                       **{k: v for k, v in record.items() if k != "message"}})
        if self.mode != "dry-run":
            self.store.audit(snapshot.arn, record)

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, change: Change) -> EventReport:
        """Serve one change: resolve and re-read the function, evaluate, decide, notify."""
        report = EventReport(change.event_id, change.event_name)
        ref = self.inventory.resolve(change)
        if ref is None:
            report.skipped = "the function (or the mapping / integration naming it) no longer exists"
            return report
        report.function = ref.arn
        if ref.account != self.inventory.account:
            report.skipped = f"function in account {ref.account}, not this bot's account {self.inventory.account}"
            return report
        snapshot = self.inventory.function(ref)
        if snapshot is None:
            report.skipped = "the function no longer exists"
            return report
        found = self.evaluate([snapshot], report.errors).get(snapshot.arn, [])
        context = f"{change.event_name} by {change.actor or 'unknown'} ({change.event_id})"
        report.decisions = [self.decide(snapshot, f, cfg, act=True, context=context) for f, cfg in found]
        self._notify(snapshot, report.decisions, context)
        return report

    def sweep(self, act: bool = False, progress: Optional[Progress] = None, batch: int = 500) -> ScanReport:
        """Evaluate every function of the region; with ``act`` carry out decisions as the bot would."""
        report = ScanReport(self.inventory.account, self.inventory.region)
        for snapshots in _batches(self.inventory.all_functions(), batch):
            findings = self.evaluate(snapshots, report.errors)
            for snapshot in snapshots:
                decisions = [self.decide(snapshot, f, cfg, act=act, context="scan")
                             for f, cfg in findings.get(snapshot.arn, [])]
                report.decisions.extend(decisions)
                if act:
                    self._notify(snapshot, decisions, "scan")
            report.functions_scanned += len(snapshots)
            if progress:
                progress(report.functions_scanned, None)
        return report

    def _notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> None:
        if not decisions:
            return
        try:
            self.notifier.notify(snapshot, decisions, context)
        except Exception as exc:  # noqa: BLE001 - a notification failure never undoes a decision
            logger.warning("notification failed", extra={"function": snapshot.arn, "error": _reason(exc)})


def _batches(items: Iterable[FunctionSnapshot], size: int) -> Iterable[list[FunctionSnapshot]]:
    batch: list[FunctionSnapshot] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
