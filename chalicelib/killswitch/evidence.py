"""Runaway-loop evidence: a managed alarm's state change or an AWS Health notice → ``Evidence`` or ``Skip``.

* "CloudWatch Alarm State Change" of an alarm named ``safetycatch-runaway-<function>`` going to ALARM: the
  function is the one named in the alarm's metrics' ``FunctionName`` dimension (a map in these events), which
  must agree with the alarm name; metric-math alarms list several metrics, all about that one function.
* "CloudWatch Alarm Contributor State Change" of a sentinel's contributor going to ALARM: the function its
  ``FunctionName`` attribute names (the contributor is re-read with DescribeAlarmContributors before any kill).
* "AWS Health Event" from ``aws.health`` for service LAMBDA whose event type code is about a recursive or
  runaway loop: the functions are the affected entities (or the envelope's ``resources``).

Parsing is total: any input gives ``Evidence`` or ``Skip`` and never raises.

Example:
    >>> from chalicelib.policy.settings import Settings
    >>> parse({"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "id": "e1",
    ...        "account": "123456789012", "region": "us-east-1", "detail": {"alarmName": "orders-api-errors"}}).reason
    'alarm orders-api-errors is not a runaway alarm safetycatch manages'
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.core.model import FunctionRef
from chalicelib.domain import alarms
from chalicelib.intake.events import Skip, dig, text
from chalicelib.killswitch import sentinel

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
# A multi-time-series (Metrics Insights GROUP BY) alarm - a sentinel - sends this for each series (contributor) that
# changes state, also while the alarm itself stays in ALARM: then it is the only event a new loop makes (CloudWatch
# User Guide, "Alarm events and EventBridge"; API reference, AlarmContributor).
CONTRIBUTOR_STATE_CHANGE = "CloudWatch Alarm Contributor State Change"
HEALTH_EVENT = "AWS Health Event"
KINDS = (ALARM_STATE_CHANGE, HEALTH_EVENT, CONTRIBUTOR_STATE_CHANGE)
# The evidence rules by handler name (app.py subscribes them, member accounts forward what they match, and
# ``safetycatch doctor`` checks them): a managed runaway alarm going to ALARM, AWS Health notices about Lambda.
EVIDENCE_RULES: dict[str, dict[str, Any]] = {
    "on_runaway_alarm": {"source": ["aws.cloudwatch"], "detail-type": [ALARM_STATE_CHANGE, CONTRIBUTOR_STATE_CHANGE],
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
    contributor: str = ""  # a sentinel contributor's id (a contributor state change names exactly one)


def parse(event: Any) -> Evidence | Skip:
    """One EventBridge event → :class:`Evidence` or :class:`Skip`. Never raises."""
    try:
        kind = text(dig(event, "detail-type"))
        if kind == ALARM_STATE_CHANGE:
            return _sentinel(event) if sentinel.is_sentinel(dig(event, "detail", "alarmName")) else _alarm(event)
        if kind == HEALTH_EVENT:
            return _health(event)
        if kind == CONTRIBUTOR_STATE_CHANGE:
            return _contributor(event)
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
    if not_in_alarm := _not_in_alarm(detail):
        return Skip(eid, name, not_in_alarm)
    function_name, problem = _watched_function(dig(detail, "configuration", "metrics"))
    if problem:
        return Skip(eid, name, problem)
    if function_name != expected:
        return Skip(eid, name, f"alarm {name[:120]} watches FunctionName {function_name[:80]!r}, not {expected[:80]!r}")
    ref = FunctionRef.parse(function_name, account, region)
    if ref is None or ref.account != account:
        return Skip(eid, name, f"malformed FunctionName dimension {function_name[:80]!r}")
    if not eid:
        return Skip("", name, "malformed event: no id")
    reason = f"alarm {name} in ALARM: {text(dig(detail, 'state', 'reason'))[:240] or 'no reason given'}"
    return Evidence(eid, name, ALARM_STATE_CHANGE, account, region, (ref,), reason, _observed(event, detail))


def _not_in_alarm(detail: dict[str, Any]) -> str:
    """Why an alarm state change is not an ALARM ('' when it is one)."""
    state = text(dig(detail, "state", "value"))
    return "" if state == "ALARM" else f"alarm state is {state[:20] or 'missing'}, not ALARM"


def _observed(event: dict[str, Any], detail: dict[str, Any]) -> datetime | None:
    """When the alarm changed state: its own timestamp, else the event's time."""
    return _time(dig(detail, "state", "timestamp")) or _time(event.get("time"))


def _watched_function(metrics: Any) -> tuple[str, str]:
    """(the one FunctionName the alarm's metrics name, '') or ('', why there is not exactly one)."""
    if not isinstance(metrics, list) or not metrics:
        return "", "malformed alarm event: no configuration.metrics"
    named = set()
    for metric in metrics:
        inner = dig(metric, "metricStat", "metric")
        if inner is None:
            continue  # a metric-math expression
        if not isinstance(inner, dict) or not isinstance(inner.get("dimensions"), dict):
            return "", "malformed alarm event: a metric without a dimensions map"
        value = inner["dimensions"].get("FunctionName")
        if value is not None:
            named.add(value if isinstance(value, str) else repr(value)[:60])
    if not named:
        return "", "no FunctionName dimension in the alarm's metrics"
    if len(named) > 1:
        return "", f"the alarm's metrics name several functions ({', '.join(sorted(named))[:160]})"
    return next(iter(named)), ""


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
    if not_in_alarm := _not_in_alarm(detail):
        return Skip(eid, name, not_in_alarm)
    if not eid:
        return Skip("", name, "malformed event: no id")
    reason = f"sentinel {name} in ALARM: {text(dig(detail, 'state', 'reason'))[:200] or 'no reason given'}"
    return Evidence(eid, name, ALARM_STATE_CHANGE, account, region, (), reason, _observed(event, detail))


def _contributor(event: dict[str, Any]) -> Evidence | Skip:
    """One contributor of a sentinel went to ALARM: the function its ``FunctionName`` attribute names, a claim the
    kill-switch checks against DescribeAlarmContributors and the function's own metrics before it may act."""
    envelope = _alarm_envelope(event)
    if isinstance(envelope, Skip):
        return envelope
    name, account, region, eid, detail = envelope
    if not sentinel.is_sentinel(name):
        return Skip(eid, name, f"alarm {name[:120]} is not a sentinel safetycatch manages (only sentinels have "
                               "contributors)")
    if not_in_alarm := _not_in_alarm(detail):
        return Skip(eid, name, f"contributor {not_in_alarm}")
    contributor_id = text(dig(detail, "alarmContributor", "id"))
    function_name = text(dig(detail, "alarmContributor", "attributes", "FunctionName"))
    ref = FunctionRef.parse(function_name, account, region) if function_name else None
    if not eid or not contributor_id or ref is None or ref.name != function_name or ref.account != account:
        return Skip(eid, name, "malformed contributor event: no id, or no plain FunctionName attribute")
    reason = (f"sentinel {name} contributor {function_name} in ALARM: "
              f"{text(dig(detail, 'state', 'reason'))[:200] or 'no reason given'}")
    return Evidence(eid, name, CONTRIBUTOR_STATE_CHANGE, account, region, (ref,), reason, _observed(event, detail),
                    contributor_id[:64])


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
    # No skip on statusCode "closed": Lambda notifies only after it has stopped the loop (the Health Dashboard notice
    # can take up to 3.5 hours: Lambda developer guide, "Recursive loop notifications"), so every such notice is
    # about a loop already stopped once; its status says nothing about whether the function loops again.
    affected = text(detail.get("affectedAccount")) or account
    if affected != account:
        return Skip(eid, code, f"the notice from account {account} is about account {affected[:20]}: not acting")
    refs, problem = _affected_functions(event, detail, account, region)
    if problem:
        return Skip(eid, code, problem)
    key = text(detail.get("eventArn")) or eid
    if not key:
        return Skip("", code, "malformed event: no id")
    description = next((text(d.get("latestDescription")) for d in detail.get("eventDescription") or []
                        if isinstance(d, dict)), "")
    reason = f"AWS Health {code}: {description[:200] or 'Lambda reported a recursive loop'}"
    observed = _time(detail.get("startTime")) or _time(event.get("time"))
    return Evidence(key, code, HEALTH_EVENT, account, region, tuple(refs), reason, observed)


def _affected_functions(event: dict[str, Any], detail: dict[str, Any], account: str,
                        region: str) -> tuple[list[FunctionRef], str]:
    """(the functions a Health notice names, '') or ([], why it may not act on them): its affected entities
    (else the event's resources), all in the notice's own account, at most ``MAX_FUNCTIONS_PER_EVENT``."""
    candidates = [text(dig(e, "entityValue")) for e in detail.get("affectedEntities") or [] if isinstance(e, dict)]
    if not any(candidates):
        candidates = [text(r) for r in event.get("resources") or []]
    refs: list[FunctionRef] = []
    for candidate in candidates:
        ref = FunctionRef.parse(candidate, account, region) if candidate else None
        if ref and ref not in refs:
            refs.append(ref)
    if not refs:
        return [], "no Lambda function among the Health event's affected entities"
    if foreign := next((ref for ref in refs if ref.account != account), None):
        return [], f"the event from account {account} names a function in account {foreign.account}: not acting"
    if len(refs) > MAX_FUNCTIONS_PER_EVENT:
        return [], f"{len(refs)} affected functions: more than {MAX_FUNCTIONS_PER_EVENT}, not acting"
    return refs, ""


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


# -- verifying an alarm before it may kill ------------------------------------------------------------------

EXTRA_MINUTES = 3  # looked at around the alarm's window: CloudWatch evaluates datapoints that arrive late


@dataclass(frozen=True)
class AlarmVerdict:
    """Whether an ALARM change is evidence enough to kill. ``reason`` says why not (``kind``: ``not-alarm``,
    ``not-ours``, ``edited``, ``gone``, ``out-of-scope``, ``no-breach``), or what the metrics showed. ``at``: when
    the alarm went to ALARM, as CloudWatch says now (the end of the window the metrics are read over)."""

    ok: bool
    reason: str
    kind: str = ""
    at: datetime | None = None


def verify_alarm_evidence(evidence: Evidence, recorded: dict[str, Any] | None, inventory: Any,
                          policy_set: Any, not_before: datetime | None = None) -> AlarmVerdict:
    """An alarm state is not evidence by itself: anyone with ``cloudwatch:PutMetricAlarm`` or ``SetAlarmState``
    can make an alarm named ``safetycatch-runaway-*`` go to ALARM. The ALARM change of ``evidence`` may kill only
    when, all read fresh through ``inventory``:

    1. the alarm exists and is in ALARM now;
    2. it is the alarm the bot put: ``recorded`` (``{"params": Thresholds params, "canonical": alarm}``, stored
       when the bot put it; None when it never did) equals the alarm as it is now;
    3. the function exists and is in kill-switch scope (tagged, listed, or a recursive-trigger finding);
    4. the function's own metrics (GetMetricData, AWS/Lambda, which only Lambda publishes) cross the recorded
       thresholds for the alarm's number of consecutive minutes, in the window ending at its state change
       and starting no earlier than ``not_before`` (the function's last restore: a loop from before the kill
       is over, and must not confirm an alarm forced after the restore).

    Example:
        verdict = verify_alarm_evidence(evidence, recorded_alarm(store, arn), inventory, policy_set)
        verdict.ok, verdict.reason
        # -> (True, 'confirmed from the metrics: 3 minutes over Invocations > 5000, ... (Invocations 9000; ...)')
    """
    (ref,) = evidence.functions[:1]
    name = evidence.event_name
    described, verdict = _in_alarm(inventory, name)
    if not verdict.ok:
        return verdict
    if recorded is None:
        return AlarmVerdict(False, f"{name} is not an alarm safetycatch put (no record of putting it)", "not-ours")
    if alarms.canonical(alarms.put_arguments(described)) != recorded["canonical"]:
        return AlarmVerdict(False, f"{name} differs from the alarm safetycatch put (edited since)", "edited")
    scoped = function_in_scope(inventory, ref, policy_set)
    if not scoped.ok:
        return scoped
    assert verdict.at is not None
    return confirmed_breach(inventory, ref.name, alarms.Thresholds.from_params(recorded["params"]), verdict.at,
                            not_before)


def verify_sentinel_evidence(evidence: Evidence, inventory: Any, params: dict[str, Any]) -> AlarmVerdict:
    """A sentinel's ALARM change names no function; it may lead to kills only when the sentinel is in ALARM now
    and is exactly the sentinel safetycatch puts with the ``runaway-loop`` ``params`` (``sentinel`` on; its query
    and thresholds as :func:`chalicelib.killswitch.sentinel.sentinel_specs` makes them). Each contributor is then
    confirmed on its own by :func:`verify_contributor`. ``at`` of an ``ok`` verdict ends the contributors' window."""
    name = evidence.event_name
    described, verdict = _in_alarm(inventory, name)
    if not verdict.ok:
        return verdict
    if not params.get("sentinel"):
        return AlarmVerdict(False, f"{name} is not a sentinel safetycatch put (the runaway-loop policy's sentinel "
                                   "is off)", "not-ours")
    wanted = {spec["AlarmName"]: spec for spec in sentinel.sentinel_specs(
        int(params["invocations_per_minute"]), int(params["concurrent_executions"]), int(params["minutes"]))}
    if alarms.canonical(alarms.put_arguments(described)) != alarms.canonical(wanted.get(name)):
        return AlarmVerdict(False, f"{name} differs from the sentinel safetycatch puts (edited since; the next "
                                   "sweep puts it back)", "edited")
    return verdict


def verify_contributor(inventory: Any, ref: FunctionRef, params: dict[str, Any], end: datetime,
                       not_before: datetime | None = None) -> AlarmVerdict:
    """A sentinel's contributor is confirmed exactly as any kill: the function read fresh, the thresholds its own
    runaway alarm would get (the policy's, raised by its own baseline: ``runaway_loop.kill_thresholds``), and its
    own metrics crossing them for the policy's consecutive minutes in the window ending at ``end``.

    Example:
        verify_contributor(inventory, FunctionRef.parse("looper", account, region), params, verdict.at).ok
        # -> True
    """
    from chalicelib.checks import runaway_loop

    snapshot = inventory.function(ref)
    if snapshot is None:
        return AlarmVerdict(False, f"no function {ref.name} in {ref.account} {ref.region}", "gone")
    inventory.load({"metrics": [snapshot]}, {snapshot.arn: set(runaway_loop.metrics(params))}, {})
    thresholds = runaway_loop.kill_thresholds(snapshot, params)
    verdict = confirmed_breach(inventory, ref.name, thresholds, end, not_before)
    if not verdict.ok and thresholds.invocations_per_minute > int(params["invocations_per_minute"]):
        return dataclasses.replace(verdict, reason=f"{verdict.reason}: within {params['baseline_multiplier']} x its "
                                                   "own busiest minute, busy, not a loop")
    return verdict


def _in_alarm(inventory: Any, name: str) -> tuple[dict[str, Any], AlarmVerdict]:
    """The alarm ``name`` read fresh, and an ``ok`` verdict (``at``: its state change) when it is in ALARM now."""
    described = inventory.alarm(name) or {}
    state = described.get("StateValue")
    if state != "ALARM":
        return described, AlarmVerdict(False, f"alarm {name} is {state or 'not there'} now, not ALARM", "not-alarm")
    changed = described.get("StateTransitionedTimestamp") or described.get("StateUpdatedTimestamp")
    at = changed.astimezone(timezone.utc) if isinstance(changed, datetime) else datetime.now(timezone.utc)
    return described, AlarmVerdict(True, "", at=at)


def in_kill_switch_scope(snapshot: Any, inventory: Any, policy_set: Any) -> bool:
    """The runaway-loop policy covers ``snapshot`` as read now: tagged or listed, or (``alarm_recursive_triggers``)
    the recursive-trigger check still finds a loop risk on it (its facets read through ``inventory``)."""
    from chalicelib.checks import REGISTRY, runaway_loop
    from chalicelib.core.model import AccountFacts

    cfg = policy_set.policies.get(runaway_loop.CHECK.id)
    params = cfg.params if cfg else runaway_loop.CHECK.defaults()
    if runaway_loop.in_scope(snapshot, params):
        return True
    risk_cfg = policy_set.policies.get("recursive-trigger")
    check = REGISTRY["recursive-trigger"]
    if not params["alarm_recursive_triggers"] or risk_cfg is None or risk_cfg.mode == "off" or \
            not check.in_scope(snapshot, risk_cfg.params):
        return False
    inventory.load({facet: [snapshot] for facet in check.needs if facet != "account"}, {}, {})
    return bool(check.evaluate(snapshot, risk_cfg.params, AccountFacts()))


def confirmed_breach(inventory: Any, function_name: str, thresholds: alarms.Thresholds,
                     end: datetime, not_before: datetime | None = None) -> AlarmVerdict:
    """Whether ``function_name``'s per-minute metrics cross ``thresholds`` for ``thresholds.minutes`` consecutive
    minutes in the alarm's window ending at ``end`` (a few minutes either side for late datapoints); no minute
    that began before ``not_before`` (the last restore) counts."""
    watched = [(metric, stat, limit) for metric, stat, limit in (
        ("Invocations", "Sum", thresholds.invocations_per_minute),
        ("ConcurrentExecutions", "Maximum", thresholds.concurrent_executions),
        ("RecursiveInvocationsDropped", "Sum", 0 if thresholds.recursion_dropped else None))
        if limit is not None and (limit or metric == "RecursiveInvocationsDropped")]
    stop = end.replace(second=0, microsecond=0) + timedelta(minutes=2)
    start = stop - timedelta(minutes=thresholds.minutes + EXTRA_MINUTES + 2)
    series = inventory.metric_series(function_name, [(m, s) for m, s, _ in watched], start, stop)
    over: dict[datetime, list[str]] = {}
    for metric, _, limit in watched:
        for stamp, value in series.get(metric, {}).items():
            if value > limit and (not_before is None or stamp >= not_before):
                over.setdefault(stamp.replace(second=0, microsecond=0), []).append(f"{metric} {value:g}")
    run, best = _longest_run(sorted(over))
    limits = ", ".join(f"{m} > {lim}" for m, _, lim in watched)
    if best >= thresholds.minutes:
        shown = "; ".join(", ".join(over[stamp]) for stamp in run[-10:])
        return AlarmVerdict(True, f"confirmed from the metrics: {best} minute{'s' if best != 1 else ''} over "
                                  f"{limits} ({shown})")
    return AlarmVerdict(False, f"the metrics do not show a breach of {limits} for {thresholds.minutes} minute"
                               f"{'s' if thresholds.minutes != 1 else ''} (over in {best})", "no-breach")


def _longest_run(minutes: list[datetime]) -> tuple[list[datetime], int]:
    """The longest run of consecutive minutes in sorted ``minutes`` (the run, its length)."""
    best: list[datetime] = []
    current: list[datetime] = []
    for stamp in minutes:
        current = current + [stamp] if current and stamp - current[-1] == timedelta(minutes=1) else [stamp]
        if len(current) > len(best):
            best = current
    return best, len(best)


# -- verifying an AWS Health notice before it may kill ------------------------------------------------------

HEALTH_RECENT = timedelta(days=1)  # a notice the Health API last updated longer ago than this is history


def verify_health_notice(evidence: Evidence, notice: Any,
                         now: datetime) -> tuple[tuple[FunctionRef, ...], AlarmVerdict]:
    """A Health notice on the bus is a claim: anyone who can put an event where the handler reads it (the bus of
    a member account, the dead-letter queue, a direct invoke) can write one. It may kill only what the Health API
    itself (``notice``: ``inventory.health.read_notice`` of the evidence's ``eventArn`` in its own account) says:
    the event exists, is about LAMBDA with the same event type code, in the evidence's region, is ``open`` or
    ``closed`` (Lambda may publish its loop notice closed, having stopped the loop; ``upcoming`` is refused), was
    started or updated within ``HEALTH_RECENT`` of ``now``, and lists the function among its affected entities in
    the evidence's account. Returns the functions both the notice and the Health API name, and the verdict
    (``at``: when the Health API says the event started).

    Example:
        refs, verdict = verify_health_notice(evidence, read_notice(clients, evidence.key), now)
        verdict.ok, [ref.name for ref in refs]
        # -> (True, ['thumbnailer'])
    """
    refused = _health_refusal(evidence, notice, now)
    if refused:
        return (), AlarmVerdict(False, refused, "not-confirmed")
    listed = set()
    for value, owner in notice.entities:
        ref = FunctionRef.parse(value, evidence.account, evidence.region) if value else None
        if ref is not None and owner in ("", evidence.account):
            listed.add(ref.arn)
    refs = tuple(ref for ref in evidence.functions if ref.arn in listed)
    if not refs:
        return (), AlarmVerdict(False, f"the Health API lists none of the functions the notice names among the "
                                       f"affected entities of {notice.arn}", "not-confirmed")
    start = notice.start or notice.updated
    return refs, AlarmVerdict(True, f"confirmed with the Health API: {notice.code} {notice.status} since "
                                    f"{start:%Y-%m-%d %H:%M} UTC" if start else "confirmed with the Health API",
                              at=start)


def _health_refusal(evidence: Evidence, notice: Any, now: datetime) -> str:
    """Why the Health API's answer does not confirm the notice ('' when it does)."""
    if not notice.found:
        return f"AWS Health does not know {evidence.key[:160]} ({notice.problem[:160]})"
    if notice.service != "LAMBDA" or notice.code != evidence.event_name:
        return f"the Health API describes {evidence.key[:160]} as {notice.service} {notice.code[:80]}, not " \
               f"LAMBDA {evidence.event_name[:80]}"
    if notice.region != evidence.region:
        return f"the Health API places the event in {notice.region or 'no region'}, not {evidence.region}"
    if notice.status not in ("open", "closed"):  # Lambda posts its loop notice once it has stopped the loop: closed
        return f"the Health API says the event is {notice.status or 'of no status'}, not open or closed"
    latest = max((t for t in (notice.start, notice.updated) if t is not None), default=None)
    if latest is None or latest < now - HEALTH_RECENT:
        return f"the Health API last updated the event {f'{latest:%Y-%m-%d %H:%M} UTC' if latest else 'never'}: " \
               f"older than {HEALTH_RECENT.days} day"
    return ""


def function_in_scope(inventory: Any, ref: FunctionRef, policy_set: Any) -> AlarmVerdict:
    """The function read fresh exists and is in kill-switch scope (its tags readable: unknown is never in it)."""
    snapshot = inventory.function(ref)
    if snapshot is None:
        return AlarmVerdict(False, f"no function {ref.name} in {ref.account} {ref.region}", "gone")
    if snapshot.tags_unreadable:  # the tags decide the scope: unknown is never in it (fail closed)
        return AlarmVerdict(False, f"the tags of {ref.name} cannot be read, so whether it is in kill-switch scope is "
                                   f"unknown ({snapshot.tags_unreadable})", "out-of-scope")
    if not in_kill_switch_scope(snapshot, inventory, policy_set):
        return AlarmVerdict(False, f"{ref.name} is not in kill-switch scope now", "out-of-scope")
    return AlarmVerdict(True, "")
