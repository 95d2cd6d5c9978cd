"""Runaway-loop evidence: a managed alarm's state change or an AWS Health notice → ``Evidence`` or ``Skip``.

* "CloudWatch Alarm State Change" of an alarm named ``safetycatch-runaway-<function>`` going to ALARM: the
  function is the one named in the alarm's metrics' ``FunctionName`` dimension (a map in these events), which
  must agree with the alarm name; metric-math alarms list several metrics, all about that one function.
* "AWS Health Event" from ``aws.health`` for service LAMBDA whose event type code is about a recursive or
  runaway loop: the functions are the affected entities (or the envelope's ``resources``).

Parsing is total: any input gives ``Evidence`` or ``Skip`` and never raises.

Example:
    >>> from chalicelib.settings import Settings
    >>> parse({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "id": "e1",
    ...        "account": "123456789012", "region": "us-east-1", "detail": {"alarmName": "orders-api-errors"}}).reason
    'alarm orders-api-errors is not a runaway alarm safetycatch manages'
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chalicelib import alarms, sentinel
from chalicelib.events import Skip, dig, text
from chalicelib.model import FunctionRef

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
HEALTH_EVENT = "AWS Health Event"
KINDS = (ALARM_STATE_CHANGE, HEALTH_EVENT)
# The evidence rules by handler name (app.py subscribes them, member accounts forward what they match, and
# ``safetycatch doctor`` checks them): a managed runaway alarm going to ALARM, AWS Health notices about Lambda.
EVIDENCE_RULES: dict[str, dict[str, Any]] = {
    "on_runaway_alarm": {"source": ["aws.cloudwatch"], "detail-type": [ALARM_STATE_CHANGE],
                         "detail": {"alarmName": [{"prefix": alarms.PREFIX}], "state": {"value": ["ALARM"]}}},
    "on_lambda_health": {"source": ["aws.health"], "detail-type": [HEALTH_EVENT], "detail": {"service": ["LAMBDA"]}},
}
MAX_FUNCTIONS_PER_EVENT = 20
_LOOP_CODE = re.compile(r"RECURSI|RUNAWAY|LOOP")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")  # CloudWatch writes +0000; Python 3.10 wants +00:00


@dataclass(frozen=True)
class Evidence:
    """A function (or a few, for Health) seen in a runaway loop. ``key`` is the idempotency key: the
    EventBridge id for an alarm change, the Health event ARN for a notice (its updates are one notice)."""

    key: str
    event_name: str
    kind: str
    account: str
    region: str
    functions: tuple[FunctionRef, ...]
    reason: str
    observed_at: datetime | None = None


def parse(event: Any) -> Evidence | Skip:
    """One EventBridge event → :class:`Evidence` or :class:`Skip`. Never raises."""
    try:
        kind = text(dig(event, "detail-type"))
        if kind == ALARM_STATE_CHANGE:
            return _sentinel(event) if sentinel.is_sentinel(dig(event, "detail", "alarmName")) else _alarm(event)
        if kind == HEALTH_EVENT:
            return _health(event)
        return Skip(text(dig(event, "id")), "", f"not runaway evidence ({kind[:80] or 'no detail-type'})")
    except Exception as exc:  # noqa: BLE001 - hostile input must never escape as an exception
        return Skip(text(dig(event, "id")), "", f"malformed event ({type(exc).__name__})")


def _envelope(event: dict[str, Any], name: str, source: str) -> tuple[str, str, str, dict[str, Any]] | Skip:
    eid = text(event.get("id"))
    if text(event.get("source")) != source:
        return Skip(eid, name, f"not from {source} ({text(event.get('source'))[:40] or 'no source'})")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        return Skip(eid, name, "malformed event: no detail object")
    account, region = text(event.get("account")), text(event.get("region"))
    if not _ACCOUNT.match(account) or not _REGION.match(region):
        return Skip(eid, name, "malformed event: no account or region")
    return account, region, eid, detail


def _alarm_envelope(event: dict[str, Any]) -> tuple[str, str, str, str, dict[str, Any]] | Skip:
    """An alarm state change's name, account, region, id and detail (or why it is not one)."""
    name = text(dig(event, "detail", "alarmName"))
    envelope = _envelope(event, name, "aws.cloudwatch")
    return envelope if isinstance(envelope, Skip) else (name, *envelope)


def _alarm(event: dict[str, Any]) -> Evidence | Skip:
    envelope = _alarm_envelope(event)
    if isinstance(envelope, Skip):
        return envelope
    name, account, region, eid, detail = envelope
    if not name:
        return Skip(eid, "", "malformed alarm event: no alarmName")
    expected = alarms.function_of_alarm(name)
    if expected is None:
        return Skip(eid, name, f"alarm {name[:120]} is not a runaway alarm safetycatch manages")
    state = text(dig(detail, "state", "value"))
    if state != "ALARM":
        return Skip(eid, name, f"alarm state is {state[:20] or 'missing'}, not ALARM")
    metrics = dig(detail, "configuration", "metrics")
    if not isinstance(metrics, list) or not metrics:
        return Skip(eid, name, "malformed alarm event: no configuration.metrics")
    named = set()
    for metric in metrics:
        inner = dig(metric, "metricStat", "metric")
        if inner is None:
            continue  # a metric-math expression
        if not isinstance(inner, dict) or not isinstance(inner.get("dimensions"), dict):
            return Skip(eid, name, "malformed alarm event: a metric without a dimensions map")
        value = inner["dimensions"].get("FunctionName")
        if value is not None:
            named.add(value if isinstance(value, str) else repr(value)[:60])
    if not named:
        return Skip(eid, name, "no FunctionName dimension in the alarm's metrics")
    if len(named) > 1:
        return Skip(eid, name, f"the alarm's metrics name several functions ({', '.join(sorted(named))[:160]})")
    (function_name,) = named
    if function_name != expected:
        return Skip(eid, name, f"alarm {name[:120]} watches FunctionName {function_name[:80]!r}, not {expected[:80]!r}")
    ref = FunctionRef.parse(function_name, account, region)
    if ref is None:
        return Skip(eid, name, f"malformed FunctionName dimension {function_name[:80]!r}")
    if not eid:
        return Skip("", name, "malformed event: no id")
    reason = f"alarm {name} in ALARM: {text(dig(detail, 'state', 'reason'))[:240] or 'no reason given'}"
    observed = _time(dig(detail, "state", "timestamp")) or _time(event.get("time"))
    return Evidence(eid, name, ALARM_STATE_CHANGE, account, region, (ref,), reason, observed)


def _sentinel(event: dict[str, Any]) -> Evidence | Skip:
    """A sentinel in ALARM: no function yet; the kill-switch reads its contributors and confirms each."""
    envelope = _alarm_envelope(event)
    if isinstance(envelope, Skip):
        return envelope
    name, account, region, eid, detail = envelope
    try:
        sentinel.watched_metric(name)
    except ValueError:
        return Skip(eid, name, f"alarm {name[:120]} is not a sentinel safetycatch manages")
    state = text(dig(detail, "state", "value"))
    if state != "ALARM":
        return Skip(eid, name, f"alarm state is {state[:20] or 'missing'}, not ALARM")
    if not eid:
        return Skip("", name, "malformed event: no id")
    reason = f"sentinel {name} in ALARM: {text(dig(detail, 'state', 'reason'))[:200] or 'no reason given'}"
    observed = _time(dig(detail, "state", "timestamp")) or _time(event.get("time"))
    return Evidence(eid, name, ALARM_STATE_CHANGE, account, region, (), reason, observed)


def _health(event: dict[str, Any]) -> Evidence | Skip:
    code = text(dig(event, "detail", "eventTypeCode"))
    envelope = _envelope(event, code, "aws.health")
    if isinstance(envelope, Skip):
        return envelope
    account, region, eid, detail = envelope
    if text(detail.get("service")) != "LAMBDA":
        return Skip(eid, code, f"Health event for {text(detail.get('service'))[:40] or 'no service'}, not LAMBDA")
    if not _LOOP_CODE.search(code):
        return Skip(eid, code, f"Health event {code[:80] or '(no code)'} is not about a recursive loop")
    if text(detail.get("statusCode")).lower() == "closed":
        return Skip(eid, code, "the Health event is closed (the loop it reported is over)")
    account = text(detail.get("affectedAccount")) or account
    if not _ACCOUNT.match(account):
        return Skip(eid, code, "malformed event: affectedAccount is not an account id")
    candidates = [text(dig(e, "entityValue")) for e in detail.get("affectedEntities") or [] if isinstance(e, dict)]
    if not any(candidates):
        candidates = [text(r) for r in event.get("resources") or []]
    refs: list[FunctionRef] = []
    for candidate in candidates:
        ref = FunctionRef.parse(candidate, account, region) if candidate else None
        if ref and ref not in refs:
            refs.append(ref)
    if not refs:
        return Skip(eid, code, "no Lambda function among the Health event's affected entities")
    if len(refs) > MAX_FUNCTIONS_PER_EVENT:
        return Skip(eid, code, f"{len(refs)} affected functions: more than {MAX_FUNCTIONS_PER_EVENT}, not acting")
    key = text(detail.get("eventArn")) or eid
    if not key:
        return Skip("", code, "malformed event: no id")
    description = next((text(d.get("latestDescription")) for d in detail.get("eventDescription") or []
                        if isinstance(d, dict)), "")
    reason = f"AWS Health {code}: {description[:200] or 'Lambda reported a recursive loop'}"
    observed = _time(detail.get("startTime")) or _time(event.get("time"))
    return Evidence(key, code, HEALTH_EVENT, account, region, tuple(refs), reason, observed)


def _time(value: Any) -> datetime | None:
    """ISO-8601 (EventBridge, CloudWatch ``+0000``) or RFC-1123 (Health) → aware datetime; None if neither."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(_OFFSET.sub(r"\1:\2", value.replace("Z", "+00:00")))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
