"""Entry points behind app.py's handlers; ``replay`` calls exactly these.

Each takes the raw EventBridge event (a dict) and returns a JSON-serialisable report. Nothing raises for
bad input: an event the bot must not act on comes back with ``skipped`` set to the reason.

Example:
    >>> import json
    >>> event = json.load(open("tests/events/lambda-UpdateFunctionConfiguration20150331v2-AccessDenied.json"))
    >>> handle_event(event)["skipped"]
    'the call failed (AccessDenied)'
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.bot.runtime import Runtime
from chalicelib.core import observability
from chalicelib.core.aws import error_code, is_transient
from chalicelib.core.log import logger
from chalicelib.decide.engine import EventReport
from chalicelib.intake import events, heartbeat
from chalicelib.killswitch import evidence, sentinel
from chalicelib.killswitch import kill as killswitch
from chalicelib.org import fanout

_runtime: Runtime | None = None


def current_runtime() -> Runtime:
    """The process-wide runtime (built on first use, reused by warm invocations)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_env()
    _runtime.refresh_mode()  # the operator's switch in SSM (cached briefly); a no-op without one
    return _runtime


def reset_runtime(runtime: Runtime | None = None) -> None:
    """Replace the process-wide runtime (the CLI and tests set their own)."""
    global _runtime
    _runtime = runtime


def _skip(event: Any, reason: str) -> dict[str, Any]:
    name = events.base_name(events.text(events.dig(event, "detail", "eventName")))
    report = EventReport(events.event_id(event), name, skipped=reason).to_json()
    logger.info("skipped", extra={"event_id": report["event_id"], "event_name": name, "reason": reason})
    observability.record_report(report)
    return report


def _account_from_context(runtime: Runtime, context: Any) -> None:
    arn = getattr(context, "invoked_function_arn", "") or ""
    if not runtime.account and (m := re.match(r"^arn:aws[a-z-]*:lambda:[^:]+:(\d{12}):", arn)):
        runtime.account = m[1]


def change_account(change: events.Change) -> str:
    """The account a change is about: the event's own (``events.parse`` refuses a request naming a function of
    another account); a member account is read and fixed through its remediation role."""
    return change.account


def permanent_failure(runtime: Runtime, parsed: events.Change, exc: ClientError) -> dict[str, Any]:
    """The rule of :func:`chalicelib.core.aws.is_transient` at the event boundary: a transient failure raises (Lambda
    retries the event; its on-failure destination keeps it after the last attempt), a permanent one (access
    denied, a role that cannot be assumed) is recorded as the event's ``skipped`` reason and the event returns."""
    if is_transient(exc):
        logger.warning("transient AWS failure: the event fails and Lambda retries it",
                       extra={"event_id": parsed.event_id, "operation": exc.operation_name, "error": error_code(exc)})
        raise exc
    account = change_account(parsed)
    if exc.operation_name == "AssumeRole":
        reason = f"cannot assume {runtime.member_role} in account {account} ({error_code(exc)})"
    else:
        reason = f"cannot read what changed: {exc.operation_name} failed ({error_code(exc) or 'error'})"
    logger.error("permanent AWS failure: recorded, not retried", extra={"event_id": parsed.event_id,
                 "operation": exc.operation_name, "error": error_code(exc), "account": account})
    return EventReport(parsed.event_id, parsed.event_name, skipped=reason,
                       errors=[f"{exc.operation_name}: {error_code(exc) or 'error'}"]).to_json()


def on_cloudtrail_change(event: Any, context: Any = None, runtime: Runtime | None = None) -> dict[str, Any]:
    """A CloudTrail config change: parse, skip or act once (idempotent on the CloudTrail eventID)."""
    runtime = runtime or current_runtime()
    if runtime.mode == "off":
        return _skip(event, "safetycatch is off (SAFETYCATCH_MODE=off)")
    parsed = events.parse(event, runtime.settings)
    _heard(runtime, event)
    if isinstance(parsed, events.Skip):
        return _skip(event, parsed.reason)
    _account_from_context(runtime, context)
    runtime.dedupe.register_context(context)

    def act(raw: dict[str, Any]) -> dict[str, Any]:
        # IAM is global (its events come from us-east-1): a role's functions may be in any region the bot covers
        regions = runtime.covered_regions if parsed.source in events.GLOBAL_SOURCES else (parsed.region,)
        try:
            return EventReport.merge([runtime.engine(change_account(parsed), region).handle(
                dataclasses.replace(parsed, region=region)) for region in regions]).to_json()
        except ClientError as exc:
            return permanent_failure(runtime, parsed, exc)

    report = runtime.dedupe.run(event, act)
    if report.get("duplicate"):
        report = {**report, "skipped": report.get("skipped") or "duplicate event (already handled)",
                  "findings": []}
    observability.record_report(report)
    logger.info("event handled", extra={"event_id": report.get("event_id"), "function": report.get("function"),
                                        "skipped": report.get("skipped"),
                                        "outcomes": [f["outcome"] for f in report.get("findings", [])],
                                        "errors": report.get("errors", [])[:5]})
    return report


def _heard(runtime: Runtime, event: Any) -> None:
    """A CloudTrail event of this scope reached the bot (chalicelib/intake/heartbeat.py); never fails the event."""
    account, region = events.text(events.dig(event, "account")), events.text(events.dig(event, "region"))
    if events.dig(event, "detail-type") != events.CLOUDTRAIL or not account.isdigit() or not region:
        return
    try:
        heartbeat.record(runtime.store.table, account, region, events.text(events.dig(event, "detail", "eventName")),
                         runtime.store.clock())
    except Exception as exc:  # noqa: BLE001 - the pipe's health is noted, never in the way of the event
        logger.warning("heartbeat not recorded", extra={"account": account, "region": region, "error": str(exc)})


def on_runaway_evidence(event: Any, context: Any = None, runtime: Runtime | None = None) -> dict[str, Any]:
    """A managed runaway alarm went to ALARM, or AWS Health reported a Lambda loop: kill the function(s) once
    (idempotent on the EventBridge id, or the Health event ARN, whose updates are one notice)."""
    runtime = runtime or current_runtime()
    parsed = evidence.parse(event)
    if runtime.mode == "off":
        parsed = events.Skip(events.text(events.dig(event, "id")), getattr(parsed, "event_name", ""),
                             "safetycatch is off (SAFETYCATCH_MODE=off)")
    if isinstance(parsed, events.Skip):
        report = EventReport(parsed.event_id, parsed.event_name, skipped=parsed.reason).to_json()
        logger.info("skipped", extra={"event_id": parsed.event_id, "event_name": parsed.event_name,
                                      "reason": parsed.reason})
        return report
    _account_from_context(runtime, context)
    runtime.dedupe.register_context(context)
    report = runtime.dedupe.run({"id": parsed.key, "detail": {}},
                                lambda _: killswitch.handle_evidence(runtime, parsed).to_json())
    if report.get("duplicate"):
        report = {**report, "skipped": report.get("skipped") or "duplicate event (already handled)", "findings": []}
    logger.info("evidence handled", extra={"event_id": parsed.key, "function": report.get("function"),
                                           "skipped": report.get("skipped"),
                                           "outcomes": [f["outcome"] for f in report.get("findings", [])]})
    return report


def on_schedule(event: Any, context: Any = None, runtime: Runtime | None = None) -> dict[str, Any]:
    """The periodic sweep: what no config event announces (metrics, logs, drift) is caught here, and
    approvals Slack could not take are re-sent. Acts exactly as ``safetycatch scan --fix``. With a sweep queue
    (``SAFETYCATCH_SWEEP_QUEUE``) it fans out one message per (account, region) to the sweep worker instead."""
    runtime = runtime or current_runtime()
    if runtime.mode == "off":
        return _skip(event, "safetycatch is off (SAFETYCATCH_MODE=off)")
    _account_from_context(runtime, context)
    url = fanout.queue_url(runtime)
    if url:
        return fanout.start_run(runtime, url)
    engine = runtime.engine(runtime.bot_account(), runtime.home_region)
    sentinel.ensure_policy(runtime.policy_set, engine)
    report = heartbeat.sweep_listening(runtime, engine)
    outcomes: dict[str, int] = {}
    for finding in report["findings"]:
        outcomes[finding["outcome"]] = outcomes.get(finding["outcome"], 0) + 1
    logger.info("scheduled sweep", extra={"functions": report["functions_scanned"], "outcomes": outcomes,
                                          "errors": report["errors"][:20]})
    return {"functions_scanned": report["functions_scanned"], "outcomes": outcomes, "errors": report["errors"],
            **({"heartbeat": report["heartbeat"]} if report.get("heartbeat") else {})}


def on_sweep_work(event: Any, context: Any = None, runtime: Runtime | None = None) -> dict[str, Any]:
    """The sweep worker: an SQS batch of (run, account, region) work items; returns the partial batch failures.
    With the bot off, every item fails back to the queue (retried later, then dead-lettered), none is swept."""
    runtime = runtime or current_runtime()
    records = [r for r in (events.dig(event, "Records") or []) if isinstance(r, dict)]
    if runtime.mode == "off":
        return {"batchItemFailures": [{"itemIdentifier": str(r.get("messageId", ""))} for r in records]}
    _account_from_context(runtime, context)
    return fanout.sweep_batch(runtime, records, context)


def handle_event(event: Any, context: Any = None, runtime: Runtime | None = None) -> dict[str, Any]:
    """Dispatch any event the deployed bot subscribes to, by ``detail-type`` (what ``replay`` runs)."""
    kind = events.dig(event, "detail-type")
    if kind == events.CLOUDTRAIL:
        return on_cloudtrail_change(event, context, runtime)
    if kind in evidence.KINDS:
        return on_runaway_evidence(event, context, runtime)
    return _skip(event, f"not an event safetycatch subscribes to ({str(kind)[:80] if kind else 'no detail-type'})")
