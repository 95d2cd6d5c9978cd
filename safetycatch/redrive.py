"""``safetycatch redrive [--queue URL_OR_NAME] [--fix] [--format table|json]``: what the bot could not handle, back
through the handler ``replay`` runs.

The dead-letter queue (``--queue``, else ``SAFETYCATCH_DLQ``; see safetycatch/build/dead_letters.py for who sends
there) holds:

* Lambda on-failure records: an event handler, the sweep, the Slack worker or the alarm notifier gave up (its
  retries spent, or the event too old). The original event is under ``requestPayload``; why, under
  ``requestContext.condition`` and ``responsePayload``;
* EventBridge dead-letter messages: a rule could not deliver its event to Lambda at all. The body is the event;
  why, in the message attributes ``ERROR_CODE`` / ``ERROR_MESSAGE`` (and ``RULE_ARN``);
* anything else, which is reported as unparseable and kept.

An EventBridge event runs through :func:`chalicelib.bot.handlers.handle_event`, exactly as ``replay`` runs it: without
``--fix`` as a dry-run (nothing changes, nothing is deleted, every message stays); with ``--fix`` as the deployed
bot (``SAFETYCATCH_TABLE`` required: the bot's idempotency records there keep an event that had already acted,
say before its invocation timed out, from acting twice). A message is deleted only once its event was handled:
the handler returned (it acted, or decided there was nothing to do). An event that fails again, and anything
unparseable, is kept and reported, and made visible again for the next run.

Only CloudTrail events are replayed, and each is re-read from AWS by the handler, so a made-up one can at most
re-evaluate a function as a sweep would. Runaway evidence (an alarm state change, an AWS Health notice) is a claim
in a queue anyone with ``sqs:SendMessage`` could have written: reported, never acted on (the next real alarm,
notice or sweep acts). What the handler cannot replay is reported for a human rather than acted on: a missed
scheduled sweep (the next one covers it; ``safetycatch scan --fix`` runs one now); a Slack click the worker never
carried out (its payload is an unverifiable claim of who clicked, so it is never executed from the queue: the
approval is still pending, decide it in Slack or with ``safetycatch approve ID``); an alarm notification that could
not reach Slack.

Example:
    $ SAFETYCATCH_DLQ=safetycatch-prod-dead-letters safetycatch redrive --format json
    $ safetycatch redrive --queue safetycatch-prod-dead-letters --fix
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code
from chalicelib.killswitch.evidence import KINDS as EVIDENCE_KINDS

VISIBILITY_SECONDS = 300  # a received batch of 10 is handled well within this; then deleted or released
WAIT_SECONDS = 1  # long polling (any wait > 0 asks every SQS server): an empty answer means an empty queue
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
QUEUE_URL = re.compile(r"^https?://[A-Za-z0-9.:-]+/(\d{12}|queue)/(?P<name>[A-Za-z0-9_-]{1,80}(\.fifo)?)$")
SQS_HOST_REGION = re.compile(r"^https?://sqs\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
SLACK_TASKS = {"action", "command", "tell"}


def add_parser(sub: Any, parents: list[Any] | None = None) -> None:
    """Register ``redrive`` on the CLI's subcommands (safetycatch/main.py; ``parents``: -v, --profile)."""
    redrive = sub.add_parser("redrive", parents=parents or [],
                             help="run what the bot could not handle (its dead-letter queue) through the "
                                  "handler again; deletes only with --fix, once handled")
    redrive.add_argument("--queue", metavar="URL_OR_NAME", help="the dead-letter queue (default: SAFETYCATCH_DLQ)")
    redrive.add_argument("--fix", action="store_true", help="act as the deployed bot would; delete what was handled")
    redrive.add_argument("--format", choices=("table", "json"), default="table")
    redrive.add_argument("--policies", metavar="DIR")


# -- what a message holds -------------------------------------------------------------------------------------


@dataclass
class Letter:
    """One message of the queue, understood: the original payload, where it comes from and why it failed."""

    message_id: str
    receipt: str
    source: str  # "lambda-destination" | "eventbridge-dlq" | "unparseable"
    payload: Any = None
    reason: str = ""
    sender: str = ""  # the function (Lambda) or the rule (EventBridge) that gave up
    request_id: str = ""


def parse(message: dict[str, Any]) -> Letter:
    """Classify one SQS message (``ReceiveMessage`` item) by its shape.

    Example:
        >>> record = {"requestContext": {"requestId": "r1", "condition": "RetriesExhausted",
        ...           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"},
        ...           "requestPayload": {"detail-type": "Scheduled Event"},
        ...           "responsePayload": {"errorType": "Throttling", "errorMessage": "Rate exceeded"}}
        >>> letter = parse({"MessageId": "m1", "ReceiptHandle": "h", "Body": json.dumps(record)})
        >>> letter.source, letter.reason
        ('lambda-destination', 'RetriesExhausted: Throttling: Rate exceeded')
        >>> parse({"MessageId": "m2", "ReceiptHandle": "h", "Body": "not json"}).source
        'unparseable'
    """
    letter = Letter(str(message.get("MessageId", "")), str(message.get("ReceiptHandle", "")), "unparseable")
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        letter.reason = "the body is not JSON"
        return letter
    if isinstance(body, dict) and isinstance(body.get("requestContext"), dict) and "requestPayload" in body:
        return _lambda_record(letter, body)
    if isinstance(body, dict) and "detail-type" in body:
        attributes = message.get("MessageAttributes") or {}
        value = {k: str((v or {}).get("StringValue", "")) for k, v in attributes.items()}
        letter.source, letter.payload, letter.sender = "eventbridge-dlq", body, value.get("RULE_ARN", "")
        letter.reason = ": ".join(x for x in (value.get("ERROR_CODE"), value.get("ERROR_MESSAGE")) if x)[:300]
        return letter
    letter.reason = "neither a Lambda invocation record nor an EventBridge event"
    return letter


def _lambda_record(letter: Letter, body: dict[str, Any]) -> Letter:
    context, response = body["requestContext"], body.get("responsePayload")
    why = [str(context.get("condition") or "failed")]
    if isinstance(response, dict):
        why.append(": ".join(str(response[k]) for k in ("errorType", "errorMessage") if response.get(k)))
    elif response:
        why.append(str(response))
    letter.source, letter.payload = "lambda-destination", body["requestPayload"]
    letter.reason = ": ".join(w for w in why if w)[:300]
    letter.sender, letter.request_id = str(context.get("functionArn") or ""), str(context.get("requestId") or "")
    return letter


# -- handling one letter ----------------------------------------------------------------------------------------


def _entry(letter: Letter, event_id: str, name: str, skipped: str) -> dict[str, Any]:
    return {"event_id": event_id, "event_name": name, "function": None, "skipped": skipped, "findings": [],
            "errors": [], "functions": []}


def _not_replayed(letter: Letter) -> dict[str, Any] | None:
    """A payload the handler does not take: reported for a human (see the module doc), or None."""
    payload = letter.payload
    if not isinstance(payload, dict):
        return None
    if payload.get("detail-type") in EVIDENCE_KINDS:
        raw = payload.get("detail")
        detail: dict[str, Any] = raw if isinstance(raw, dict) else {}
        name = str(detail.get("alarmName") or detail.get("eventTypeCode") or payload["detail-type"])[:120]
        return _entry(letter, str(detail.get("eventArn") or payload.get("id", ""))[:200], name,
                      f"runaway evidence ({payload['detail-type']}) is a claim here: reported, never acted on from "
                      "the queue (the next real alarm, AWS Health notice or sweep acts; `safetycatch kill FUNCTION` "
                      "acts now)")
    if set(payload) == {"task"}:  # the Slack worker's handover: the id of a task the route stored
        return _entry(letter, letter.request_id, "slack task",
                      "a Slack request the worker never carried out; not replayed from the queue: decide again in "
                      "Slack or with `safetycatch approve|deny ID`, `safetycatch kill|restore FUNCTION`")
    if payload.get("detail-type") == "Scheduled Event":
        return _entry(letter, str(payload.get("id", "")), "scheduled sweep",
                      "a missed scheduled sweep: the next one covers it (`safetycatch scan --fix` runs one now)")
    if payload.get("kind") in SLACK_TASKS and "detail-type" not in payload:
        what = " ".join(str(payload.get(k)) for k in ("verb", "command", "id", "arg") if payload.get(k))[:120]
        return _entry(letter, letter.request_id, f"slack {payload['kind']}",
                      f"a Slack request the worker never carried out ({what or payload['kind']} by "
                      f"{str(payload.get('user', '?'))[:40]}); not replayed from the queue: decide again in Slack "
                      "or with `safetycatch approve|deny ID`, `safetycatch kill|restore FUNCTION`")
    records = payload.get("Records")
    if isinstance(records, list) and records and all(isinstance(r, dict) and r.get("EventSource") == "aws:sns"
                                                     for r in records):
        return _entry(letter, letter.request_id, "dead-letter alarm notification",
                      "an alarm notification that could not be posted to Slack (the queue depth alarm says the same)")
    return None


@dataclass
class Outcome:
    entry: dict[str, Any] | None = None
    handled: bool = False
    problem: str = ""  # why it is kept


def handle(letter: Letter, runtime: Any, handler: Callable[..., dict[str, Any]]) -> Outcome:
    """Run one letter: the handler for an EventBridge event, a report for what is not replayed."""
    if letter.source == "unparseable":
        return Outcome(problem=letter.reason)
    reported = _not_replayed(letter)
    if reported is not None:
        return Outcome(reported, handled=True)
    if not isinstance(letter.payload, dict) or "detail-type" not in letter.payload:
        return Outcome(problem="the record's requestPayload is not an event safetycatch knows")
    try:
        return Outcome(handler(letter.payload, runtime=runtime), handled=True)
    except Exception as exc:  # noqa: BLE001 - one event failing again must not stop the others: kept, reported
        code = error_code(exc) or type(exc).__name__
        event = letter.payload
        entry = _entry(letter, str((event.get("detail") or {}).get("eventID") or event.get("id", "")),
                       str((event.get("detail") or {}).get("eventName") or event.get("detail-type")), "")
        entry["skipped"], entry["errors"] = None, [f"failed again: {code}: {str(exc)[:200]}"]
        return Outcome(entry, problem=f"the handler failed again ({code})")


# -- the queue ------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one ``redrive`` did: the report the CLI prints."""

    queue: str
    acting: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    deleted: int = 0
    kept: int = 0
    unparseable: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "events": self.events, "deleted": self.deleted, "kept": self.kept,
                "unparseable": self.unparseable}


def queue_url(runtime: Any, value: str) -> tuple[Any, str]:
    """The SQS client and URL of ``value`` (a queue URL, or a name in the runtime's region)."""
    from safetycatch.common import UsageError

    value = value.strip()
    if QUEUE_URL.match(value):
        host = SQS_HOST_REGION.match(value)
        return runtime.clients(host["region"] if host else None)("sqs"), value
    if not QUEUE_NAME.match(value):
        raise UsageError(f"redrive: {value[:80]!r} is neither an SQS queue URL nor a queue name")
    sqs = runtime.clients()("sqs")
    try:
        return sqs, str(sqs.get_queue_url(QueueName=value)["QueueUrl"])
    except ClientError as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise UsageError(f"redrive: no queue {value} in {runtime.home_region}") from None
        raise


def receive(sqs: Any, url: str) -> Iterator[list[dict[str, Any]]]:
    """Batches of up to 10 messages until the queue answers empty (each seen once per run)."""
    seen: set[str] = set()
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS,
                                    VisibilityTimeout=VISIBILITY_SECONDS, MessageAttributeNames=["All"],
                                    AttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        seen.update(m["MessageId"] for m in fresh)
        yield fresh


def _batched(sqs: Any, method: str, url: str, entries: list[dict[str, Any]]) -> int:
    """``delete_message_batch`` / ``change_message_visibility_batch`` by tens; returns how many succeeded."""
    done = 0
    for start in range(0, len(entries), 10):
        chunk = [{**e, "Id": str(i)} for i, e in enumerate(entries[start:start + 10])]
        done += len(getattr(sqs, method)(QueueUrl=url, Entries=chunk).get("Successful", []))
    return done


def redrive(runtime: Any, sqs: Any, url: str, acting: bool,
            handler: Callable[..., dict[str, Any]] | None = None) -> Run:
    """Read the whole queue once; handle every letter; delete (when ``acting``) what was handled."""
    from chalicelib.bot.handlers import handle_event

    run_event = handler or handle_event  # the handler `replay` runs; tests may wrap it
    run, release = Run(url.rsplit("/", 1)[-1], acting), []
    for batch in receive(sqs, url):
        done = []
        for message in batch:
            letter = parse(message)
            outcome = handle(letter, runtime, run_event)
            if outcome.entry is not None:
                outcome.entry["message"] = {"id": letter.message_id, "source": letter.source, "reason": letter.reason,
                                            "sender": letter.sender, "deleted": acting and outcome.handled}
                run.events.append(outcome.entry)
            if letter.source == "unparseable" or outcome.problem and outcome.entry is None:
                run.unparseable.append({"id": letter.message_id, "reason": outcome.problem,
                                        "body": str(message.get("Body", ""))[:200]})
            if acting and outcome.handled:
                done.append({"ReceiptHandle": letter.receipt})
            else:
                release.append({"ReceiptHandle": letter.receipt, "VisibilityTimeout": 0})
        deleted = _batched(sqs, "delete_message_batch", url, done)  # handled: gone for good
        run.deleted += deleted
        run.kept += len(done) - deleted  # a delete that failed leaves the message; its event is a duplicate next time
    _batched(sqs, "change_message_visibility_batch", url, release)  # kept: visible again for the next run
    run.kept += len(release)
    return run


# -- the command ----------------------------------------------------------------------------------------------


def cmd_redrive(args: argparse.Namespace) -> int:
    from chalicelib.bot.handlers import reset_runtime
    from safetycatch import render
    from safetycatch.common import UsageError, runtime_for

    where = (args.queue or os.environ.get("SAFETYCATCH_DLQ", "")).strip()
    if not where:
        raise UsageError("redrive: name the dead-letter queue with --queue or SAFETYCATCH_DLQ")
    runtime = runtime_for(args, mode=None if args.fix else "dry-run")  # --policies, --profile
    if args.fix and not runtime.table:
        raise UsageError("redrive --fix: set SAFETYCATCH_TABLE to the bot's state table: its idempotency records "
                         "keep an event that already acted from acting twice")
    acting = bool(args.fix) and runtime.mode == "enforce"
    if args.fix and not acting:
        print(f"safetycatch: SAFETYCATCH_MODE={runtime.mode} - nothing is acted on, so nothing is deleted",
              file=sys.stderr)
    reset_runtime(runtime)
    sqs, url = queue_url(runtime, where)
    run = redrive(runtime, sqs, url, acting)
    if args.format == "json":
        print(json.dumps(run.to_json(), indent=2))
    else:
        render.replay_table(run.events, mode=runtime.mode, command="redrive")
        for item in run.unparseable:
            render.console.print(f"  [red]unparseable[/] message {item['id']}: {item['reason']}")
        render.console.print(f"[bold]{run.queue}[/]: {run.deleted} deleted, {run.kept} kept"
                             + ("" if acting else " (without --fix nothing is deleted)"))
    return 0
