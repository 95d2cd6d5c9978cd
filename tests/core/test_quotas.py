"""AWS's control-plane quotas in the test world (tests/world/aws_quotas.py) and the bot inside them
(chalicelib/core/quotas.py): each service throttles as it really does, the bot keeps to its share, a sweep under quotas
loses nothing, and a read that still fails names the facet and the functions."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.bot.runtime import Runtime
from chalicelib.core import quotas
from chalicelib.core.aws import IN_FLIGHT, Clients
from chalicelib.killswitch import kill as killswitch
from chalicelib.policy.settings import PolicyError, load
from tests.world.aws_quotas import QuotaLayer

ACCOUNT = "123456789012"
ONE_ATTEMPT = Config(retries={"mode": "standard", "max_attempts": 1})
POLICIES = "policies"


@pytest.fixture
def layer(aws: Any) -> Any:
    """The quota layer on the pacer's virtual clock, for sessions created inside the test."""
    with QuotaLayer(clock=quotas.pacer().clock).installed() as installed:
        yield installed


def _key() -> str:
    """The layer's account key: the access key the requests are signed with (moto's fake credentials)."""
    return str(boto3.session.Session().get_credentials().access_key)


def _first_throttle(client: Any, call: Any, tries: int = 200) -> tuple[int, ClientError]:
    for n in range(tries):
        try:
            call(client)
        except ClientError as exc:
            return n, exc
    raise AssertionError("never throttled")


@pytest.mark.parametrize(("service", "call", "allowed", "code", "status", "extra"), [
    ("apigateway", lambda c: c.get_rest_apis(), 40, "TooManyRequestsException", 429, {"retryAfterSeconds": "1"}),
    ("apigatewayv2", lambda c: c.get_apis(), 40, "TooManyRequestsException", 429, {"Message": "Too Many Requests"}),
    ("lambda", lambda c: c.list_functions(), 15, "TooManyRequestsException", 429,
     {"Reason": "CallerRateLimitExceeded", "Type": "User", "retryAfterSeconds": "1"}),
    ("lambda", lambda c: c.get_function(FunctionName="f"), 100, "TooManyRequestsException", 429,
     {"Reason": "CallerRateLimitExceeded"}),
    ("cloudwatch", lambda c: c.describe_alarms(), 9, "Throttling", 400, {}),
    ("cloudwatch", lambda c: c.put_metric_alarm(
        AlarmName="a", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60, EvaluationPeriods=1,
        Threshold=1, ComparisonOperator="GreaterThanThreshold"), 3, "Throttling", 400, {}),
    ("logs", lambda c: c.describe_log_groups(), 5, "ThrottlingException", 400, {}),
    ("iam", lambda c: c.list_roles(), 20, "Throttling", 400, {}),
])
def test_each_service_throttles_with_its_own_error(aws, layer, service, call, allowed, code, status, extra):
    """Over its quota a request gets the code, HTTP status and error members that service really answers with,
    parsed by botocore from that service's own wire protocol (rest-json, json, smithy-rpc-v2-cbor, query)."""
    if service == "lambda":
        aws.function("f")
    client = boto3.session.Session(region_name="us-east-1").client(service, config=ONE_ATTEMPT)
    n, exc = _first_throttle(client, call)
    assert n == allowed
    assert exc.response["Error"]["Code"] == code
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert {key: exc.response.get(key) for key in extra} == extra


def test_get_resources_is_five_every_two_seconds_and_v1_v2_share_one_budget(aws, layer):
    clock = quotas.pacer().clock
    arn = aws.function("orders-api")
    api_id = aws.rest_api(arn)
    session = boto3.session.Session(region_name="us-east-1")
    v1, v2 = session.client("apigateway", config=ONE_ATTEMPT), session.client("apigatewayv2", config=ONE_ATTEMPT)
    n, exc = _first_throttle(v1, lambda c: c.get_resources(restApiId=api_id))
    assert n == 5 and exc.response["Error"]["Code"] == "TooManyRequestsException"
    clock.advance(0.4)  # one more token at 2.5 a second
    v1.get_resources(restApiId=api_id)
    with pytest.raises(ClientError):
        v1.get_resources(restApiId=api_id)
    clock.advance(60)  # both buckets full again: 40 calls of v1 and v2 together, then throttled
    calls = [v1.get_rest_apis, v2.get_apis]
    made = 0
    with pytest.raises(ClientError) as raised:
        while made < 100:
            calls[made % 2]()
            made += 1
    assert made == 40 and raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_the_pacer_keeps_the_bot_within_its_share_while_the_customer_takes_the_rest(aws, layer):
    """The customer's CI takes half of GetResources' bucket; the bot's 30 reads, paced to its half, are never
    throttled, and the share they took, measured by the layer, is at most max_quota_share."""
    arn = aws.function("orders-api")
    api_id = aws.rest_api(arn)
    clients = Clients("us-east-1", boto3.session.Session(region_name="us-east-1"))
    layer.spend(_key(), "us-east-1", "apigateway:GetResources", 2.5)
    started = quotas.pacer().clock.monotonic()
    for _ in range(30):
        clients("apigateway").get_resources(restApiId=api_id)
    assert dict(layer.throttled) == {}
    assert layer.peak_share()["apigateway:GetResources"] <= quotas.DEFAULT_SHARE + 1e-9
    assert quotas.pacer().clock.monotonic() - started >= 29 / 1.25 - 2  # paced: 1.25 a second after its burst


def test_in_flight_caps_come_from_the_quota_table():
    assert IN_FLIGHT["lambda"] == quotas.in_flight("lambda") == 5  # GetFunction 100/s x 0.5 x 100 ms
    assert IN_FLIGHT["apigateway"] == IN_FLIGHT["apigatewayv2"] == 1  # 10/s (both together) x 0.5 x 100 ms
    assert IN_FLIGHT["cloudwatch"] == 8  # GetMetricData's 500/s, capped
    assert [q.window for q in quotas.quotas_for("apigateway", "GetResources")] == ["5 every 2 s",
                                                                                   "10/s (burst 40)"]
    assert {q.name: q.rate for q in quotas.QUOTAS if q.name in {
        "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm",
        "cloudwatch:DeleteAlarms", "cloudwatch:SetAlarmState"}} == {
        "cloudwatch:GetMetricData": 500, "cloudwatch:DescribeAlarms": 9, "cloudwatch:PutMetricAlarm": 3,
        "cloudwatch:DeleteAlarms": 3, "cloudwatch:SetAlarmState": 3}
    assert all(q.source.startswith("https://") for q in quotas.QUOTAS)


def test_max_quota_share_is_a_validated_setting(tmp_path):
    import shutil

    shutil.copytree(POLICIES, tmp_path / "p")
    settings = tmp_path / "p" / "settings.yaml"
    assert load(str(tmp_path / "p")).settings.max_quota_share == 0.5
    settings.write_text(settings.read_text().replace("max_quota_share: 0.5", "max_quota_share: 1.5"))
    with pytest.raises(PolicyError, match="max_quota_share"):
        load(str(tmp_path / "p"))


def _estate(aws: Any, functions: int, rest_apis: int) -> None:
    """``functions`` functions, every ``functions // rest_apis``-th behind its own REST API (some with a timeout
    over API Gateway's 29 s: apigw-timeout findings), every 10th critical."""
    step = functions // rest_apis
    for i in range(functions):
        tags = {"critical": "true"} if i % 10 == 0 else {"team": f"t{i % 5}"}
        arn = aws.function(f"fn-{i:05d}", timeout=30 if i % (2 * step) == 0 else 10, tags=tags)
        if i % step == 0:
            aws.rest_api(arn, path=f"r{i}")
        if i % (10 * step) == 5:  # HTTP APIs too: v1 and v2 count against one API Gateway budget
            aws.http_api(arn, route=f"GET /h{i}")


def _sweep(layer: QuotaLayer | None) -> tuple[set[tuple[str, str]], list[str], int]:
    runtime = Runtime.from_env(POLICIES, mode="dry-run", region="us-east-1")
    runtime.account = ACCOUNT
    report = runtime.engine(ACCOUNT, "us-east-1").sweep(act=False)
    return ({(d.finding.function_arn.rsplit(":", 1)[-1], d.finding.policy) for d in report.decisions}, report.errors,
            report.functions_scanned)


def test_a_sweep_under_quotas_loses_nothing(aws):
    """2,000 functions, 200 REST and 20 HTTP APIs: with AWS's quotas on (the pacer on the same virtual clock) the sweep
    ends with zero errors, zero throttles and the same findings as without them, and the bot took at most its
    share of every quota."""
    _estate(aws, 2000, 200)
    plain, errors, scanned = _sweep(None)
    assert scanned == 2000 and errors == [] and ("fn-00000", "apigw-timeout") in plain
    quotas.configure(clock=quotas.ManualClock())
    layer = QuotaLayer(clock=quotas.pacer().clock)
    with layer.installed():
        paced, errors, scanned = _sweep(layer)
    assert scanned == 2000 and errors == [] and paced == plain
    assert dict(layer.throttled) == {}
    peaks = layer.peak_share()
    assert peaks["apigateway:GetResources"] <= 0.5 + 1e-9 and max(peaks.values()) <= 0.5 + 1e-9
    assert quotas.pacer().clock.monotonic() >= 200 / 1.25 - 5  # GetResources paced: 200 APIs at 1.25 a second


def test_a_read_that_still_fails_names_the_facet_and_the_functions(aws, monkeypatch):
    """The customer's CI holds API Gateway's GetResources quota for the whole sweep: the route facet cannot be
    read after botocore's retries, and the report says which functions' route checks did not run."""
    _estate(aws, 20, 2)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # botocore's back-off between attempts
    layer = QuotaLayer(clock=quotas.pacer().clock)
    with layer.installed():
        layer.spend(_key(), "us-east-1", "apigateway:GetResources", 1e9)
        findings, errors, _ = _sweep(layer)
    unread = [e for e in errors if e.startswith("could not read routes")]
    assert len(unread) == 1 and "TooManyRequestsException" in unread[0]
    assert "its checks did not run on 20 functions: fn-00000, fn-00001" in unread[0]
    assert not any(policy == "apigw-timeout" for _, policy in findings)


def test_a_kill_under_quotas_waits_for_its_share_and_is_never_throttled(aws, layer):
    """The kill-switch's reads and writes (Lambda's 15/s control plane) while the customer's deploys take half of
    it: the kill lands, nothing is throttled, and the restore puts the function back."""
    aws.function("thumbnailer")
    runtime = Runtime.from_env(POLICIES, mode="enforce", region="us-east-1")
    runtime.account = ACCOUNT
    layer.spend(_key(), "us-east-1", "lambda:control-plane", 7.5)
    result = killswitch.kill(runtime, "thumbnailer", "loop seen", "alice")
    assert result["outcome"] == "fixed"
    assert killswitch.restore(runtime, "thumbnailer", "alice")["outcome"] == "restored"
    assert dict(layer.throttled) == {}
    assert layer.peak_share()["lambda:control-plane"] <= 0.5 + 1e-9


def _log_estate(aws: Any, n: int) -> None:
    for i in range(n):
        aws.function(f"fn-{i}")
        aws.log_lines(f"fn-{i}", ["OSError: [Errno 28] No space left on device"] if i % 5 == 0 else ["START", "END"])


def _insights_search(runtime: Runtime, clock: quotas.ManualClock) -> list[Any]:
    from chalicelib.core.model import LogSearch
    from chalicelib.inventory import Inventory, common

    inventory = Inventory(runtime.clients("us-east-1"), ACCOUNT, sleep=clock.advance)
    snapshots = list(inventory.all_functions())
    search = LogSearch(("No space left on device", "ENOSPC"), 24)
    assert common.INSIGHTS_MAX_GROUPS == 50
    inventory.load({"logs": snapshots}, {}, {s.arn: search for s in snapshots})
    return snapshots


def test_a_query_over_its_own_budget_is_stopped_and_its_functions_reported_unread(aws, monkeypatch):
    """Logs Insights queries that run longer than their budget (60 polls from their own start) are stopped, not
    left running for up to an hour against the account's concurrent-query quota, and their functions say their
    logs were not read."""
    from chalicelib.inventory import logs as log_reader

    monkeypatch.setattr(log_reader, "INSIGHTS_MAX_GROUPS", 1)
    _log_estate(aws, 3)
    clock = quotas.pacer().clock
    layer = QuotaLayer(clock=clock, query_runtime_s=3600)
    with layer.installed():
        runtime = Runtime.from_env(POLICIES, mode="dry-run", region="us-east-1")
        snapshots = _insights_search(runtime, clock)
    assert [s.unavailable.get("logs") for s in snapshots] == [
        "Logs Insights query unfinished after 60 s: stopped, logs not read"] * 3
    assert len(layer.stopped) == 3 and layer.queries == {}, "nothing of the bot's is left running"
    assert log_reader.insights_slots(ACCOUNT)._value == 50


def test_each_query_has_its_own_budget_not_a_share_of_the_whole_search(aws, monkeypatch):
    """Ten queries of 30 s each, two at a time (the bot's slots): 150 s of polling in all, far over one query's
    60 s, yet every query finishes within its own budget and every function's logs are read; nothing is stopped
    or left running."""
    import threading

    from chalicelib.inventory import logs as log_reader

    monkeypatch.setattr(log_reader, "INSIGHTS_MAX_GROUPS", 1)
    monkeypatch.setitem(log_reader._SLOTS, ACCOUNT, threading.BoundedSemaphore(2))
    _log_estate(aws, 10)
    clock = quotas.pacer().clock
    layer = QuotaLayer(clock=clock, query_runtime_s=30)
    with layer.installed():
        runtime = Runtime.from_env(POLICIES, mode="dry-run", region="us-east-1")
        started = clock.monotonic()
        snapshots = _insights_search(runtime, clock)
    assert not any(s.unavailable.get("logs") for s in snapshots)
    assert sorted(s.name for s in snapshots if s.log_hits.count) == ["fn-0", "fn-5"]
    assert clock.monotonic() - started >= 150 and layer.queries == {} and not layer.stopped


def test_http_api_routes_are_read_while_rest_api_routes_wait_for_get_resources(aws, runtime, monkeypatch):
    """GetResources (5 every 2 s, the bot's half: 1.25/s) paces the REST APIs' route reads; the HTTP APIs' reads
    count only against the 10/s control-plane budget and must not queue behind them (a 1,000-function scan spent
    4 s reading 20 HTTP APIs after 20 REST APIs' 14 s of pacing: bench/quota_bench.py)."""
    import threading

    from chalicelib.inventory.apis import ApiReader

    rest_fn, http_fn = aws.function("orders-rest"), aws.function("orders-http")
    aws.rest_api(rest_fn)
    aws.http_api(http_fn, route="GET /orders")
    http_read = threading.Event()
    rest_routes, http_routes = ApiReader._rest_api_routes, ApiReader._http_api_routes

    def rest(self: ApiReader, *args: Any) -> Any:
        assert http_read.wait(timeout=60), "the HTTP API's routes were read only after the REST API's"
        return rest_routes(self, *args)

    def http(self: ApiReader, *args: Any) -> Any:
        try:
            return http_routes(self, *args)
        finally:
            http_read.set()

    monkeypatch.setattr(ApiReader, "_rest_api_routes", rest)
    monkeypatch.setattr(ApiReader, "_http_api_routes", http)
    index = runtime.engine(ACCOUNT, "us-east-1").inventory.apis.route_index()
    assert [r.kind for r in index[rest_fn]] == ["rest"] and [r.kind for r in index[http_fn]] == ["http"]
