"""The deployed sweep over the organisation, on AWS's own fan-out: one SQS message per (account, region).

* ``start_run`` (the 6-hourly schedule): plan the scopes (the bot's account, the listed accounts, or every
  active account of the organization; the home region or the listed ones), record the run, and send one message
  per scope to the sweep queue (SendMessageBatch, 10 a call).
* ``sweep_batch`` (the sweep worker, an SQS event source with reserved concurrency): each message sweeps its
  scope as ``scan --fix`` does, once per scope and run (Powertools idempotency on ``run/account/region``), emits
  EMF metrics per scope, and records the scope's result in the state table. A failed scope is reported as a
  partial batch failure: SQS retries it alone, and after ``MAX_RECEIVES`` it goes to the dead-letter queue,
  counted as failed in the run. The scope that completes the run posts one digest: scopes swept, failed,
  findings by policy.

Why SQS rather than a Step Functions Distributed Map: the work items are independent and small, the bot is
already a Chalice app (``on_sqs_message`` is one decorator, tested with ``chalice.test.Client``), the worker's
reserved concurrency bounds the fan-out against the member accounts' API rates, and retries, dead-lettering and
partial batch responses are SQS's own. A Distributed Map would add a state machine, its IAM role and an
execution per run to say the same, and would need ``ItemReader``/``ResultWriter`` on S3 beyond 256 KiB of state.

Settings: ``SAFETYCATCH_SWEEP_QUEUE`` (queue URL or name; unset: the schedule sweeps inline, the bot's own
account and home region), ``SAFETYCATCH_SWEEP_ACCOUNTS`` (``self`` | ``organization`` | comma-separated ids),
``SAFETYCATCH_SWEEP_REGIONS`` (comma-separated; default the home region), ``SAFETYCATCH_MEMBER_DLQ`` (the member
stacks' forwarding dead-letter queue, deploy/member-account.yaml: each scope counts what waits there and the
digest says where).

Example:
    run = start_run(runtime, queue_url)
    sweep_batch(runtime, sqs_records)
    # -> {"batchItemFailures": []}
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core import observability
from chalicelib.core.aws import describe_error
from chalicelib.core.log import logger
from chalicelib.intake import heartbeat
from chalicelib.killswitch import sentinel
from chalicelib.org.accounts import ACCOUNT_ID, NOT_COVERED, uncovered_management_account
from chalicelib.org.scopes import REGION, Scope, SweepRuntime, parse_accounts, parse_regions, plan_scopes

if TYPE_CHECKING:
    from chalicelib.decide.engine import Engine

MAX_RECEIVES = 3  # the sweep queue's redrive policy (deploy/resources.yaml): then the dead-letter queue
RUN_TTL_SECONDS = 7 * 86400
SWEEP_INTERVAL_SECONDS = 6 * 3600  # app.py's schedule: a run's messages are for this long after its start
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def queue_url(runtime: SweepRuntime) -> str:
    """The sweep queue's URL (``SAFETYCATCH_SWEEP_QUEUE``: a URL, or a name looked up once); '' when unset."""
    value = os.environ.get("SAFETYCATCH_SWEEP_QUEUE", "").strip()
    if not value or value.startswith("https://") or value.startswith("http://"):
        return value
    return str(runtime.clients()("sqs").get_queue_url(QueueName=value)["QueueUrl"])


def planned_scopes(runtime: SweepRuntime) -> list[Scope]:
    """The scopes of a scheduled run, from ``SAFETYCATCH_SWEEP_ACCOUNTS`` / ``SAFETYCATCH_SWEEP_REGIONS``."""
    accounts = os.environ.get("SAFETYCATCH_SWEEP_ACCOUNTS", "self").strip() or "self"
    regions = os.environ.get("SAFETYCATCH_SWEEP_REGIONS", "").strip()
    return plan_scopes(runtime, accounts=None if accounts in ("self", "organization") else parse_accounts(accounts),
                       all_accounts=accounts == "organization", regions=parse_regions(regions) if regions else None)


def start_run(runtime: SweepRuntime, url: str) -> dict[str, Any]:
    """Record a run and send one message per scope to the sweep queue; returns ``{"run_id", "scopes"}``."""
    run_id, scopes = uuid.uuid4().hex, planned_scopes(runtime)
    now = int(runtime.store.clock())
    organization = os.environ.get("SAFETYCATCH_SWEEP_ACCOUNTS", "").strip() == "organization"
    skipped = uncovered_management_account(runtime.session, runtime.bot_account()) if organization else None
    # the planned scopes go with the run (accounts x regions, as plan_scopes makes them): the worker sweeps only those
    runtime.store.table.put({"pk": f"sweep#{run_id}", "sk": "run", "kind": "sweep", "total": len(scopes),
                             "started": now, "accounts": json.dumps(sorted({s.account for s in scopes})),
                             "regions": json.dumps(sorted({s.region for s in scopes})),
                             "expiration": now + RUN_TTL_SECONDS, **({"not_covered": skipped} if skipped else {})})
    sqs = runtime.clients()("sqs")
    for start in range(0, len(scopes), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps({"run": run_id, "account": s.account, "region": s.region})}
                   for i, s in enumerate(scopes[start:start + 10])]
        failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
        if failed:  # SendMessageBatch reports per entry: a lost scope would silently never be swept
            raise RuntimeError(f"could not queue {len(failed)} sweep scope(s): {failed[0].get('Code', 'error')}")
    logger.info("sweep run started", extra={"run_id": run_id, "scopes": len(scopes)})
    return {"run_id": run_id, "scopes": len(scopes)}


def parse_work_item(body: Any) -> tuple[str, Scope] | None:
    """A queue message's run id and scope, or None for anything else (the queue is ours, but a body is data).

    Example:
        >>> parse_work_item('{"run": "' + "a" * 32 + '", "account": "111111111111", "region": "eu-west-1"}')
        ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', Scope(account='111111111111', region='eu-west-1'))
        >>> parse_work_item('{"run": "x", "account": "1", "region": "eu-west-1"}') is None
        True
    """
    try:
        item = json.loads(body)
        run, account, region = str(item["run"]), str(item["account"]), str(item["region"])
    except (TypeError, ValueError, KeyError):
        return None
    if not (_RUN_ID.match(run) and ACCOUNT_ID.match(account) and REGION.match(region)):
        return None
    return run, Scope(account, region)


def sweep_batch(runtime: SweepRuntime, records: list[dict[str, Any]], context: Any = None) -> dict[str, Any]:
    """Sweep each message's scope; the messages whose scope failed come back as ``batchItemFailures``."""
    runtime.dedupe.register_context(context)
    failures = []
    for record in records:
        parsed = parse_work_item(record.get("body"))
        if parsed is None:
            logger.error("malformed sweep message dropped", extra={"message_id": record.get("messageId")})
            continue
        run, scope = parsed
        refused = run_refusal(runtime, run, scope)
        if refused:
            _dropped(runtime, run, scope, refused)
            continue
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        if not sweep_scope(runtime, run, scope, last_try=receives >= MAX_RECEIVES):
            failures.append({"itemIdentifier": record.get("messageId", "")})
    return {"batchItemFailures": failures}


def run_refusal(runtime: SweepRuntime, run: str, scope: Scope) -> str:
    """Why a work item is not for a run the bot started ('' when it is): a message on the sweep queue is a claim,
    acted on only for a run recorded by ``start_run``, within ``SWEEP_INTERVAL_SECONDS`` of its start, and a scope
    it planned."""
    item = runtime.store.table.get(f"sweep#{run}", "run")
    if item is None or "started" not in item:
        return f"no sweep run {run} was started by the schedule"
    age = int(runtime.store.clock()) - int(item["started"])
    if not 0 <= age <= SWEEP_INTERVAL_SECONDS:
        return f"sweep run {run} started {age} s ago, more than one sweep interval ({SWEEP_INTERVAL_SECONDS} s)"
    if scope.account not in json.loads(str(item.get("accounts") or "[]")) or \
            scope.region not in json.loads(str(item.get("regions") or "[]")):
        return f"sweep run {run} did not plan {scope.account} {scope.region}"
    return ""


def _dropped(runtime: SweepRuntime, run: str, scope: Scope, reason: str) -> None:
    """A work item that is not the bot's: dropped (never retried into the dead-letter queue), reported once."""
    if runtime.store.claim(f"sweep-dropped#{run}#{scope.account}#{scope.region}", RUN_TTL_SECONDS):
        logger.error("sweep message dropped", extra={"run_id": run, "account": scope.account,
                                                     "region": scope.region, "reason": reason})
        runtime.store.audit("sweep-queue", {"policy": "sweep", "mode": "auto", "outcome": "refused",
                                            "message": f"{reason}: nothing swept", "context": run})


def sweep_scope(runtime: SweepRuntime, run: str, scope: Scope, last_try: bool = False) -> bool:
    """Sweep one scope once per run (a redelivered message of a swept scope does nothing); False if it failed."""
    key = {"id": f"sweep:{run}:{scope.account}:{scope.region}", "detail": {}}
    try:
        result = runtime.dedupe.run(key, lambda _: _sweep(runtime, scope))
    except (ClientError, BotoCoreError) as exc:
        reason = describe_error(exc)
        logger.warning("sweep scope failed", extra={"run_id": run, "account": scope.account, "region": scope.region,
                                                     "error": reason, "last_try": last_try})
        _metric(scope, "ScopesFailed", 1)
        if last_try:  # it goes to the dead-letter queue now: the run counts it as failed
            _record(runtime, run, scope, {"status": "failed", "errors": [reason]})
        return False
    if not result.get("duplicate"):
        _record(runtime, run, scope, result)
    return True


def _sweep(runtime: SweepRuntime, scope: Scope) -> dict[str, Any]:
    engine = runtime.engine(scope.account, scope.region)
    sentinel.ensure_policy(runtime.policy_set, engine)
    report = heartbeat.sweep_listening(runtime, engine)
    by_policy = Counter(f["policy"] for f in report["findings"])
    undelivered = _undelivered(engine, report["errors"])
    _metric(scope, "FunctionsSwept", report["functions_scanned"])
    _metric(scope, "Findings", len(report["findings"]))
    _metric(scope, "ScopeErrors", len(report["errors"]))
    return {"status": "ok", "functions": report["functions_scanned"], "by_policy": dict(by_policy),
            "errors": report["errors"][:20], **({"undelivered": undelivered} if undelivered else {})}


def _undelivered(engine: Engine, errors: list[str]) -> int:
    """Events the scope's forwarding rules could not put on the bot's bus (deploy/member-account.yaml keeps them in
    ``SAFETYCATCH_MEMBER_DLQ``); 0 without the setting or the queue (a scope without the member stack)."""
    name = os.environ.get("SAFETYCATCH_MEMBER_DLQ", "").strip()
    if not name:
        return 0
    try:
        return engine.inventory.waiting_messages(name) or 0
    except (ClientError, BotoCoreError) as exc:
        errors.append(f"could not read {name}: {describe_error(exc)}")
        return 0


def _metric(scope: Scope, name: str, value: float) -> None:
    """One EMF metric with the scope as dimensions (a metrics object per scope: dimensions never mix)."""
    observability.scope_metric(scope.account, scope.region, name, value)


def _record(runtime: SweepRuntime, run: str, scope: Scope, result: dict[str, Any]) -> None:
    """Store the scope's result once; the scope that completes the run posts the digest."""
    store, pk = runtime.store, f"sweep#{run}"
    first = store.table.put_new({"pk": pk, "sk": f"scope#{scope.account}#{scope.region}", "kind": "sweep-scope",
                                 "result": json.dumps(result), "expiration": int(store.clock()) + RUN_TTL_SECONDS})
    run_item = store.table.get(pk, "run")
    if not first or run_item is None:
        return
    # every scope but the last fits under total - 1; the last one's increment is refused: it posts the digest
    if store.table.increment_below(pk, "done", int(run_item["total"]) - 1, int(store.clock()) + RUN_TTL_SECONDS):
        return
    if store.table.put_new({"pk": pk, "sk": "digest", "kind": "sweep-digest"}):
        post_digest(runtime, run)


def digest(runtime: SweepRuntime, run: str) -> dict[str, Any]:
    """The run's summary: scopes swept and failed, functions, findings by policy, the failed scopes."""
    items = runtime.store.table.query_pk(f"sweep#{run}")
    results = [(item["sk"].split("#", 1)[1], json.loads(item["result"])) for item in items
               if item["sk"].startswith("scope#")]
    not_covered = next((str(i["not_covered"]) for i in items if i["sk"] == "run" and i.get("not_covered")), "")
    by_policy: Counter[str] = Counter()
    for _, result in results:
        by_policy.update(result.get("by_policy") or {})
    failed = sorted(scope.replace("#", " ") for scope, result in results if result.get("status") != "ok")
    undelivered = {scope.replace("#", " "): int(result["undelivered"]) for scope, result in sorted(results)
                   if result.get("undelivered")}
    return {"run_id": run, "scopes": len(results), "failed": failed,
            "functions": sum(int(r.get("functions") or 0) for _, r in results),
            "findings_by_policy": dict(sorted(by_policy.items())), "undelivered": undelivered,
            "not_covered": not_covered}


def digest_text(summary: dict[str, Any]) -> str:
    """One Slack message for a run.

    Example:
        >>> digest_text({"run_id": "r", "scopes": 3, "failed": ["111111111111 eu-west-1"], "functions": 40,
        ...              "findings_by_policy": {"apigw-timeout": 2}})
        'Sweep r: 2 of 3 scopes swept (40 functions), 1 failed: 111111111111 eu-west-1. Findings: apigw-timeout 2.'
    """
    swept = summary["scopes"] - len(summary["failed"])
    findings = ", ".join(f"{policy} {count}" for policy, count in summary["findings_by_policy"].items()) or "none"
    failed = f", {len(summary['failed'])} failed: {', '.join(summary['failed'][:10])}" if summary["failed"] else ""
    lost = summary.get("undelivered") or {}
    waiting = (f" Not forwarded to the bot: {sum(lost.values())} event(s) wait in the forwarding dead-letter queue "
               f"of {', '.join(f'{scope} ({n})' for scope, n in list(lost.items())[:10])}; "
               "`safetycatch doctor --all-accounts` says why.") if lost else ""
    skipped = (f" Not covered: {summary['not_covered']}, {NOT_COVERED.split(': ', 1)[1]}."
               if summary.get("not_covered") else "")
    return (f"Sweep {summary['run_id']}: {swept} of {summary['scopes']} scopes swept ({summary['functions']} "
            f"functions){failed}. Findings: {findings}.{waiting}{skipped}")


def post_digest(runtime: SweepRuntime, run: str) -> dict[str, Any]:
    """Post the run's digest to Slack (or log it without Slack); a Slack failure is logged, never raised."""
    summary = digest(runtime, run)
    text = digest_text(summary)
    logger.info("sweep run digest", extra={"run_id": run, "text": text, "summary": summary})
    if runtime.slack is not None and runtime.slack.channel:
        from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

        try:
            runtime.slack.post(runtime.slack.channel, text, [SectionBlock(text=MarkdownTextObject(text=text))])
        except Exception as exc:  # noqa: BLE001 - the sweep is done; a lost digest must not fail it
            logger.warning("sweep digest not posted", extra={"run_id": run, "error": describe_error(exc)})
    return summary
