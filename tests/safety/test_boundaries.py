"""The safety tests sit on the boundaries (issue 24, item 10): each test here is the one that a hand-made mutation
of a safety module survived. Each was seen failing against its mutation (the closing note of issue 24 lists them:
mutation, test, result). Metrics are put in moto's CloudWatch as Lambda publishes them; the kill-switch, the
Slack gate and the limits run as deployed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import botocore.session
import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.core.aws import is_transient
from chalicelib.domain import alarms
from chalicelib.killswitch import kill as killswitch
from chalicelib.killswitch.evidence import confirmed_breach

ACCOUNT, REGION = "123456789012", "us-east-1"
THRESHOLDS = alarms.Thresholds(invocations_per_minute=5000, concurrent_executions=0, recursion_dropped=False,
                               minutes=3)
END = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=5)  # the alarm's change


def _arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _minutes(aws, name: str, values: dict[int, float]) -> None:
    """Invocations per minute as Lambda publishes them: ``{minutes before END: value}`` (mid-minute stamps)."""
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": name}],
         "Timestamp": END - timedelta(minutes=k) + timedelta(seconds=30), "Value": v, "Unit": "Count"}
        for k, v in values.items()])


def _breach(runtime, name: str, end: datetime = END) -> bool:
    return confirmed_breach(runtime.engine(ACCOUNT, REGION).inventory, name, THRESHOLDS, end).ok


# -- evidence.confirmed_breach ------------------------------------------------------------------------------------


def test_exactly_the_alarms_minutes_confirm_and_one_fewer_does_not(aws, runtime):
    """Mutations: ``best >= minutes`` made ``best >= minutes - 1`` or ``best > minutes``."""
    _minutes(aws, "three", {0: 5001, 1: 5001, 2: 5001})
    _minutes(aws, "two", {0: 5001, 1: 5001, 2: 100})
    assert _breach(runtime, "three") and not _breach(runtime, "two")


def test_a_minute_at_the_threshold_is_not_over_it(aws, runtime):
    """Mutation: ``value > limit`` made ``>=`` (the alarm's operator is GreaterThanThreshold)."""
    _minutes(aws, "at", {0: 5000, 1: 5000, 2: 5000})
    _minutes(aws, "over", {0: 5000.5, 1: 5000.5, 2: 5000.5})
    assert not _breach(runtime, "at") and _breach(runtime, "over")


def test_minutes_with_a_gap_are_not_consecutive(aws, runtime):
    """Mutation: gaps between minutes allowed (any three minutes over, not three in a row)."""
    _minutes(aws, "gappy", {0: 9000, 1: 9000, 2: 100, 3: 9000, 4: 9000})
    assert not _breach(runtime, "gappy")


def test_a_burst_hours_before_the_alarm_does_not_confirm_it(aws, runtime):
    """Mutation: the window made the whole last day: a burst this morning plus a forced ALARM at noon killed."""
    _minutes(aws, "morning", {180: 9000, 181: 9000, 182: 9000, 183: 9000})
    assert not _breach(runtime, "morning")
    assert _breach(runtime, "morning", END - timedelta(minutes=180)), "at the burst itself it is a breach"


# -- the kill-switch ----------------------------------------------------------------------------------------------


def test_a_fresh_killing_claim_is_not_taken_over_but_a_stale_one_is(aws, runtime, calls):
    """Mutation: ``_settled`` ignoring a fresh ``killing`` claim (a second piece of evidence for one loop killed
    again while the first kill was under way, storing the zeroed state as the prior)."""
    aws.function("thumbnailer")
    store = runtime.store
    assert store.claim_kill(_arn("thumbnailer"), None)  # the first kill, under way
    calls.clear()
    result = killswitch.kill(runtime, "thumbnailer", "loop", "alice")
    assert result["outcome"] == "fixed" and "already killed" in result["message"]
    assert not [c for c in calls.writes if c.startswith("lambda.")], "nothing written to the function"
    now = store.clock()
    store.clock = lambda: now + killswitch.STALE_CLAIM_SECONDS + 1  # crashed half-way: may be taken over
    assert killswitch.kill(runtime, "thumbnailer", "loop", "alice")["fix"] is not None
    assert aws.client("lambda").get_function_concurrency(FunctionName="thumbnailer")[
        "ReservedConcurrentExecutions"] == 0


def test_the_function_the_bot_runs_in_is_never_killed(aws, runtime, monkeypatch):
    """Mutation: the running-function refusal removed (own_functions is empty outside a package)."""
    aws.function("safetycatch-prod-on_runaway_alarm")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "safetycatch-prod-on_runaway_alarm")
    monkeypatch.setenv("AWS_REGION", REGION)
    result = killswitch.kill(runtime, "safetycatch-prod-on_runaway_alarm", "loop", "alice")
    assert result["outcome"] == "exempt" and "safetycatch's own functions" in result["message"]


def test_an_undone_runaway_alarm_is_not_the_alarm_safetycatch_put(aws, runtime):
    """Mutation: ``recorded_alarm`` counting an undone ``put-runaway-alarm`` fix: after its undo, an alarm of that
    name is somebody else's and kills nothing."""
    from chalicelib.people import undo
    from safetycatch.local.cloudtrail import api_call

    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    report = handle_event(api_call("TagResource20170331v2", {"resource": _arn("thumbnailer"),
                                                             "tags": {"safetycatch:kill-switch": "true"}}),
                          runtime=runtime)
    (put,) = [f for f in report["findings"] if f["outcome"] == "fixed"]
    assert killswitch.recorded_alarm(runtime.store, _arn("thumbnailer")) is not None
    assert undo.undo_fix(runtime, put["fix_id"], "alice").ok
    assert killswitch.recorded_alarm(runtime.store, _arn("thumbnailer")) is None


def test_evidence_acts_only_in_its_own_region(aws, runtime, make_runtime):
    """Mutation: the account/region guard of ``handle_evidence`` removed. A Health notice from us-east-1 (the
    Health API confirming it and listing the entity) names a function of the same account in eu-west-1."""
    from safetycatch.local.evidence import health_event
    from safetycatch.local.sandbox import SandboxAccount
    from tests.world.health_support import stub_health

    elsewhere = SandboxAccount(region="eu-west-1")
    far = elsewhere.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    notice = health_event([far])
    stub_health(runtime, notice)
    report = handle_event(notice, runtime=runtime)
    assert report["findings"] == [] and "not in the event's own account and region" in (report["skipped"] or "")
    assert "ReservedConcurrentExecutions" not in elsewhere.client("lambda").get_function_concurrency(
        FunctionName="thumbnailer")


# -- what AWS sends ----------------------------------------------------------------------------------------------


def test_kms_access_denied_is_permanent_as_lambda_sends_it():
    """``KMSAccessDeniedException`` was tested as HTTP 402; Lambda's service model says 502 (botocore), which the
    5xx rule called transient: retried until the dead-letter queue. A key policy does not fix itself."""
    from botocore.exceptions import ClientError

    model = botocore.session.get_session().get_service_model("lambda")
    for code in ("KMSAccessDeniedException", "KMSDisabledException", "KMSNotFoundException",
                 "KMSInvalidStateException", "EC2AccessDeniedException", "InvalidSubnetIDException"):
        status = model.shape_for(code).metadata["error"]["httpStatusCode"]
        error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                            "Invoke")
        assert status == 502 and not is_transient(error), code
    unready = ClientError({"Error": {"Code": "ResourceNotReadyException"}, "ResponseMetadata": {
        "HTTPStatusCode": 502}}, "Invoke")
    assert is_transient(unready), "a function still being created is worth retrying"


# -- the Slack gate and slack.py ---------------------------------------------------------------------------------


@pytest.fixture
def pinned(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    """The bot with Slack configured as deployed, pinned to the local workspace and app; the state table's clock
    is Slack's (tests/slack_helpers.SlackClock), so windows and caches are exact."""
    from chalicelib.bot import slack_routes
    from tests.world.slack_helpers import configure_slack, deployed_bot, policies_dir

    configure_slack(aws, monkeypatch, local_slack)
    bot = deployed_bot(make_runtime, local_slack, policies_dir(
        tmp_path, settings_extra={"slack_team_ids": ["T0SAFETY1"], "slack_app_id": "A0SAFETY1"}))
    bot.runtime.store.clock = bot.clock
    yield bot
    slack_routes.wait_inline()


def _kill_body(user: str, **drop: bool) -> str:
    from urllib.parse import parse_qsl, urlencode

    from safetycatch.local.slack_local import slash_command

    form = dict(parse_qsl(slash_command(user, "kill orders-worker")))
    return urlencode({k: v for k, v in form.items() if not drop.get(k)})


def _reserved(aws, name: str):
    return aws.client("lambda").get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


def test_a_signed_fresh_body_that_is_not_utf8_is_refused_by_the_utf8_gate(pinned):
    """Mutation: the UTF-8 gate removed. Its first test signed with the wall clock, so the request was refused as
    stale before the body was read: here the timestamp is fresh on the bot's own clock."""
    import hashlib
    import hmac

    from tests.world.slack_helpers import SIGNING_SECRET

    body = b"payload=%7B%7D&x=\xff\xfe\xfa"
    for path in ("/slack/actions", "/slack/commands"):
        stamp = str(pinned.clock.tick())
        digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                   "X-Slack-Signature": f"v0={digest}"}
        response = pinned.client.http.post(path, headers=headers, body=body)
        assert response.status_code == 401 and b"invalid request" in response.body, path


@pytest.mark.parametrize("field", ["team_id", "api_app_id"])
def test_pins_refuse_a_request_that_omits_the_workspace_or_app(pinned, aws, field):
    """Mutation: a pinned workspace / app checked only when the request names one."""
    from tests.world.slack_helpers import APPROVER

    aws.function("orders-worker")
    assert pinned.post("/slack/commands", _kill_body(APPROVER, **{field: True})).status_code == 403
    assert _reserved(aws, "orders-worker") is None


def test_a_replay_just_inside_the_signature_window_is_refused(pinned, aws):
    """Mutation: the replay claim kept for 5 seconds instead of longer than Slack's 5-minute window."""
    from safetycatch.local.slack_local import signed
    from tests.world.slack_helpers import APPROVER, SIGNING_SECRET

    aws.function("orders-worker")
    body = _kill_body(APPROVER)
    stamp = pinned.clock.tick()
    headers = signed(body, SIGNING_SECRET, stamp)
    assert pinned.client.http.post("/slack/commands", headers=headers, body=body.encode()).status_code == 200
    pinned.clock.now += 299  # still inside the signature's 5 minutes
    again = pinned.client.http.post("/slack/commands", headers=headers, body=body.encode())
    assert again.status_code == 401 and b"replayed" in again.body


def test_an_approver_is_matched_exactly_never_by_prefix(pinned):
    """Mutation: ``user in approvers`` made a prefix match."""
    from tests.world.slack_helpers import APPROVER

    slack, settings = pinned.runtime.slack, pinned.runtime.settings
    assert slack.is_approver(APPROVER, settings.approvers, ())
    for near in (APPROVER[:-1], APPROVER + "2", APPROVER.lower()):
        assert not slack.is_approver(near, settings.approvers, ()), near


def test_a_stale_group_cache_fails_closed_when_slack_cannot_be_asked(pinned):
    """Mutation: group membership answered from a stale cache when Slack is unreachable (fail open): the member
    may have been removed from the group since."""
    from chalicelib.slack.client import GROUP_CACHE_SECONDS
    from tests.world.slack_helpers import GROUP, GROUP_MEMBER

    slack = pinned.runtime.slack
    assert slack.is_approver(GROUP_MEMBER, (), (GROUP,))
    pinned.clock.now += GROUP_CACHE_SECONDS - 1
    assert slack.is_approver(GROUP_MEMBER, (), (GROUP,)), "fresh cache"
    pinned.clock.now += 2
    pinned.slack.fail(500, times=10, methods=("usergroups.users.list",))
    assert not slack.is_approver(GROUP_MEMBER, (), (GROUP,))


def test_response_urls_are_https_on_slacks_own_host_only(pinned):
    """Mutation: any host ending in ``slack.com``, over any scheme."""
    slack = pinned.runtime.slack
    assert slack.trusted_response_url("https://hooks.slack.com/actions/T0/1/abc")
    for url in ("http://hooks.slack.com/actions/T0/1/abc", "https://evilslack.com/actions/x",
                "https://hooks.slack.com.evil.example/x", "https://attacker.example/?https://hooks.slack.com/"):
        assert not slack.trusted_response_url(url), url


def test_the_worker_checks_the_approver_again(pinned, aws):
    """Mutation: the worker's own approver re-check removed. A stored task of someone who is (no longer) an
    approver changes nothing."""
    from chalicelib.bot import slack_routes
    from tests.world.slack_helpers import OUTSIDER

    aws.function("orders-worker")
    task = pinned.runtime.store.put_task({"kind": "command", "command": "kill", "arg": "orders-worker",
                                          "user": OUTSIDER, "channel": "C0SAFETY1", "response_url": ""}, 900)
    answer = slack_routes.run_worker({"task": task}, pinned.runtime)
    assert answer == {"ok": False, "text": "not authorised"} and _reserved(aws, "orders-worker") is None


# -- limits, undo, state, events -----------------------------------------------------------------------------


def _snapshot(name: str = "orders-api", **kwargs):
    from chalicelib.core.model import FunctionRef, FunctionSnapshot

    return FunctionSnapshot(FunctionRef(name, ACCOUNT, REGION), **kwargs)


def test_the_fight_window_bounds_what_counts_as_a_fight(runtime):
    """Mutation: ``fight_window_hours`` ignored (every earlier application counted, however old)."""
    from chalicelib.core.model import Finding, FixSpec
    from chalicelib.decide import limits

    settings, store = runtime.settings, runtime.store
    spec = FixSpec("set-timeout", _arn("orders-api"), {"Timeout": 25}, {"Timeout": 30})
    finding = Finding("apigw-timeout", _arn("orders-api"), "high", "m", spec, {})
    start = 1_800_000_000.0
    for hours_ago in (settings.fight_window_hours + 3, settings.fight_window_hours + 2,
                      settings.fight_window_hours + 1):  # max_reapply + 1 rounds, all before the window
        store.clock = lambda h=hours_ago: start - h * 3600
        store.mark_fix(store.store_fix(_arn("orders-api"), "apigw-timeout", spec.to_json()), "applied", "stored")
    store.clock = lambda: start
    assert limits.fight(store, settings, _snapshot(), finding, "deployer") == ""
    store.mark_fix(store.store_fix(_arn("orders-api"), "apigw-timeout", spec.to_json()), "applied", "stored")
    for _ in range(settings.max_reapply):
        store.mark_fix(store.store_fix(_arn("orders-api"), "apigw-timeout", spec.to_json()), "applied", "stored")
    assert limits.fight(store, settings, _snapshot(), finding, "deployer").startswith("Fight stopped")


def test_a_reservation_of_exactly_the_share_is_automatic_and_one_more_is_not(runtime):
    """Mutation: ``value <= bound`` made ``<`` (0.1 of 1,000 is 100: 100 is allowed, 101 is not)."""
    from chalicelib.core.model import Finding, FixSpec
    from chalicelib.decide import limits

    def finding(value: int) -> Finding:
        spec = FixSpec("set-reserved-concurrency", _arn("pay"), {"ReservedConcurrentExecutions": value},
                       {"ReservedConcurrentExecutions": None})
        return Finding("reserved-concurrency", _arn("pay"), "high", "m", spec, {"account_limit": 1000})

    assert limits.over_automatic_bound(runtime.settings, finding(100)) == ""
    assert limits.over_automatic_bound(runtime.settings, finding(101)).startswith("Reserving 101")


def test_undo_compares_memory_size_and_the_recursion_fix_concurrency(aws, runtime):
    """Mutations: MemorySize left out of the set-memory comparison; the stop-recursive-loop cap left out."""
    from chalicelib.act.drift import drift
    from chalicelib.core.model import FixSpec

    aws.function("orders-api", memory=2048)
    inventory = runtime.engine(ACCOUNT, REGION).inventory
    ref = _snapshot().ref
    memory = FixSpec("set-memory", _arn("orders-api"), {"MemorySize": 1024}, {"MemorySize": 512})
    assert drift(inventory, ref, memory) == "MemorySize is now 2048, the fix set 1024"
    aws.client("lambda").put_function_concurrency(FunctionName="orders-api", ReservedConcurrentExecutions=9)
    loop = FixSpec("stop-recursive-loop", _arn("orders-api"), {"ReservedConcurrentExecutions": 1},
                   {"ReservedConcurrentExecutions": None})
    assert drift(runtime.engine(ACCOUNT, REGION).inventory, ref, loop) == \
        "ReservedConcurrentExecutions is now 9, the fix set 1"


def test_a_mute_for_one_account_does_not_mute_another(tmp_path):
    """Mutation: a mute's ``account`` glob ignored."""
    from chalicelib.core.model import FunctionRef
    from chalicelib.policy.mutelist import Mute

    mute = Mute(reason="migration", expires="2999-12-31", policy="apigw-timeout", account="111111111111")
    assert mute.matches("apigw-timeout", FunctionRef("orders-api", "111111111111", REGION))
    assert not mute.matches("apigw-timeout", FunctionRef("orders-api", "222222222222", REGION))


@pytest.mark.parametrize("offset, allowed", [(-1, True), (0, False), (1, False), (3600, False)])
def test_an_approval_is_refused_from_the_second_it_expires(aws, runtime, offset, allowed):
    """Mutations: an approval valid one second (or one hour) past ``expires_at``."""
    from chalicelib.core.model import FixSpec
    from chalicelib.people import approvals

    aws.function("orders-api", timeout=30)
    store = runtime.store
    start = 1_800_000_000.0
    store.clock = lambda: start
    spec = FixSpec("set-timeout", _arn("orders-api"), {"Timeout": 25}, {"Timeout": 30}).to_json()
    approval = store.create_approval(_arn("orders-api"), "apigw-timeout", spec, 1)
    store.clock = lambda: float(approval["expires_at"]) + offset
    outcome = approvals.decide_approval(runtime, "deny", approval["id"], actor="U0APPROVER")
    assert ("expired" not in outcome.text) is allowed, (offset, outcome.text)


def test_idempotency_records_last_a_day_and_an_in_progress_one_is_not_taken_over():
    """Mutations: records expiring after 60 s (EventBridge may redeliver for 24 h); a record still in progress
    taken over by a second delivery."""
    import time

    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    from chalicelib.intake.dedupe import Deduplicator

    dedupe = Deduplicator(None)
    ran: list[str] = []
    dedupe.run({"id": "e-1", "detail": {}}, lambda e: ran.append("first") or {"event_id": "e-1", "findings": []})
    (record,) = dedupe.persistence.records.values()
    assert record.expiry_timestamp >= int(time.time()) + 24 * 3600 - 60
    probe = Deduplicator(None)  # the key Powertools gives event e-2 (a hash of it)
    probe.run({"id": "e-2", "detail": {}}, lambda e: {"event_id": "e-2"})
    (key,) = probe.persistence.records
    dedupe.persistence.records[key] = DataRecord(  # a first delivery of e-2, still running
        idempotency_key=key, status="INPROGRESS", expiry_timestamp=int(time.time()) + 3600,
        in_progress_expiry_timestamp=int(time.time() * 1000) + 60_000)
    answer = dedupe.run({"id": "e-2", "detail": {}}, lambda e: ran.append("second") or {"event_id": "e-2"})
    assert ran == ["first"] and answer.get("duplicate") is True


def test_an_envelope_account_that_is_there_but_empty_is_malformed(runtime):
    """Mutation: an empty envelope ``account`` falling back to the record's ``recipientAccountId`` (a member's
    forwarded event could then name the bot's account)."""
    from chalicelib.intake import events
    from safetycatch.local.cloudtrail import api_call

    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})
    event["account"] = ""
    event["detail"]["recipientAccountId"] = ACCOUNT
    parsed = events.parse(event, runtime.settings)
    assert isinstance(parsed, events.Skip) and "account" in parsed.reason


# -- the arithmetic of the checks -----------------------------------------------------------------------------------


def test_a_reservation_rounds_up_never_down():
    """Mutation: ``ceil`` made ``int`` in the reservation size (67 x 1.5 = 100.5: 101, not 100)."""
    from chalicelib.checks import reserved_concurrency
    from chalicelib.core.model import AccountFacts, MetricQuery

    fn = _snapshot("pay", tags={"critical": "true"})
    fn.metrics[MetricQuery("ConcurrentExecutions", "Maximum", 14)] = 67.0
    params = {"tag_key": "critical", "tag_value": "true", "min": 10, "headroom": 1.5, "lookback_days": 14,
              "account_limit": 1000, "min_unreserved": 100}
    (finding,) = reserved_concurrency.evaluate(fn, params, AccountFacts())
    assert finding.fix.params == {"ReservedConcurrentExecutions": 101}


def test_a_target_exactly_at_the_timeout_floor_is_still_fixed():
    """Mutation: ``target >= min_timeout_seconds`` made ``>`` (29 s - 4 s = 25 s, with a floor of 25 s)."""
    from chalicelib.checks import apigw_timeout
    from chalicelib.core.model import AccountFacts, ApiRoute

    route = ApiRoute("rest", "k7q2", "orders", "GET /orders", "AWS_PROXY", 29000)
    fn = _snapshot(timeout_s=30, routes=(route,))
    (at,) = apigw_timeout.evaluate(fn, {"buffer_seconds": 4, "min_timeout_seconds": 25}, AccountFacts())
    (under,) = apigw_timeout.evaluate(fn, {"buffer_seconds": 4, "min_timeout_seconds": 26}, AccountFacts())
    assert at.fix is not None and at.fix.params == {"Timeout": 25} and under.fix is None


@pytest.mark.parametrize("table", ["memory", "dynamodb"])
def test_the_total_claim_allows_exactly_the_bound_and_claims_a_retry_once(aws, runtime, table):
    """limits.claim_reservation on both tables (moto's DynamoDB runs the transaction): 300 of 1,000 (share 0.3)
    is allowed, one more is not; claiming the same function again (a retry) counts it once; a raise of the
    same function counts the difference; giving it back (0) frees its share."""
    from chalicelib.core.model import Finding, FixSpec
    from chalicelib.decide import limits
    from chalicelib.store.state import DynamoTable, MemoryTable, StateStore, table_definition

    if table == "dynamodb":
        aws.client("dynamodb").create_table(**table_definition("ledger"))
        store = StateStore(DynamoTable(runtime.clients(), "ledger"))
    else:
        store = StateStore(MemoryTable())

    def claim(name: str, value: int) -> tuple[str, int | None]:
        spec = FixSpec("set-reserved-concurrency", _arn(name), {"ReservedConcurrentExecutions": value},
                       {"ReservedConcurrentExecutions": None})
        finding = Finding("reserved-concurrency", _arn(name), "high", "m", spec, {"account_limit": 1000})
        return limits.claim_reservation(store, runtime.settings, finding)

    assert claim("a", 100) == ("", 0) and claim("b", 100) == ("", 0)
    assert claim("b", 100) == ("", 100), "a retry replaces its own value"
    assert claim("c", 100) == ("", 0), "exactly the bound (300) is automatic"
    note, held = claim("d", 1)
    assert held is None and note.startswith("300 already reserved automatically in 123456789012 us-east-1")
    assert claim("c", 101)[0].startswith("200 already reserved"), "a raise counts the function once"
    limits.record_reservation(store, _arn("c"), 0)
    assert claim("d", 100) == ("", 0)
    assert store.table.get("auto-reservations#123456789012#us-east-1", limits.TOTAL)["total"] == 300


@pytest.mark.parametrize(("detail", "why"), [
    ({"alarmName": "someone-elses-alarm"}, "only sentinels have contributors"),
    ({"state": {"value": "OK"}}, "contributor alarm state is OK, not ALARM"),
    ({"alarmContributor": {"id": "x", "attributes": {"TableName": "t"}}}, "no plain FunctionName"),
])
def test_a_skipped_contributor_event_keeps_its_id_and_alarm_name(detail, why):
    """Mutations (make mutate, evidence._contributor): the Skip's event id or name made ``None``. A skipped event
    is reported and logged under its EventBridge id and its alarm's name (replay, the audit of what was ignored)."""
    from chalicelib.killswitch import evidence
    from tests.killswitch.test_sentinel import _contributor_event

    event = _contributor_event(**detail)
    parsed = evidence.parse(event)
    assert isinstance(parsed, evidence.Skip) and why in parsed.reason
    assert (parsed.event_id, parsed.event_name) == ("e1", event["detail"]["alarmName"])


def test_a_skipped_contributor_event_names_at_most_120_characters_of_its_alarm():
    """Mutation (evidence._contributor): ``name[:120]`` made ``name[:121]``. CloudWatch alarm names run to 255
    characters; the reason of a skip quotes at most 120 of them (reasons are logged and shown in Slack)."""
    from chalicelib.killswitch import evidence
    from tests.killswitch.test_sentinel import _contributor_event

    name = "a" * 119 + "bc" + "d" * 9
    parsed = evidence.parse(_contributor_event(alarmName=name))
    assert isinstance(parsed, evidence.Skip)
    assert f"alarm {name[:120]} is not a sentinel" in parsed.reason and name[:121] not in parsed.reason


def test_a_contributor_names_a_plain_function_of_its_own_account_and_region():
    """Mutations (evidence._contributor): the region dropped from the function's ref; the reason dropped; ``or``
    made ``and`` in the plain-name check (an ARN of the event's own account passed as a FunctionName attribute)."""
    from chalicelib.killswitch import evidence
    from tests.killswitch.test_sentinel import _contributor_event

    event = _contributor_event()
    event["region"] = "eu-west-1"
    parsed = evidence.parse(event)
    assert isinstance(parsed, evidence.Evidence)
    assert [ref.arn for ref in parsed.functions] == ["arn:aws:lambda:eu-west-1:123456789012:function:f"]
    assert parsed.reason == f"sentinel {event['detail']['alarmName']} contributor f in ALARM: Threshold Crossed"
    own_arn = {"id": "x", "attributes": {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f"}}
    skipped = evidence.parse(_contributor_event(alarmContributor=own_arn))
    assert isinstance(skipped, evidence.Skip) and "no plain FunctionName" in skipped.reason


def test_a_contributor_event_without_its_id_or_the_contributors_id_is_skipped():
    """Mutation (evidence._contributor): ``not eid or not contributor_id`` made ``and``: each id alone is needed
    (the event's id is the idempotency key; the contributor's id is what DescribeAlarmContributors confirms)."""
    from chalicelib.killswitch import evidence
    from tests.killswitch.test_sentinel import _contributor_event

    no_event_id = _contributor_event()
    no_event_id["id"] = ""
    no_contributor_id = _contributor_event(alarmContributor={"id": "", "attributes": {"FunctionName": "f"}})
    for event in (no_event_id, no_contributor_id):
        parsed = evidence.parse(event)
        assert isinstance(parsed, evidence.Skip) and "malformed contributor event" in parsed.reason
