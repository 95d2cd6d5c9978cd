"""The bot's own safety: blast radius, no self-loop, faults absorbed or recorded, races decided once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.awsrequest import AWSResponse

from chalicelib.bot.handlers import handle_event
from chalicelib.store.state import DynamoTable, StateStore
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.storm import atomic_dynamodb
from safetycatch.provision import init_state_table
from tests.conftest import POLICIES


def orders_estate(aws, n: int = 4) -> list[str]:
    arns = []
    for i in range(n):
        arn = aws.function(f"api-{i}", timeout=30)
        aws.rest_api(arn, path=f"p{i}")
        arns.append(arn)
    return arns


def timeouts(aws, n: int) -> list[int]:
    lam = aws.client("lambda")
    return [lam.get_function(FunctionName=f"api-{i}")["Configuration"]["Timeout"] for i in range(n)]


def test_blast_radius_cap_turns_fixes_into_notifications(aws, make_runtime, tmp_path):
    for f in POLICIES.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text())
    settings = tmp_path / "settings.yaml"
    settings.write_text(settings.read_text().replace("max_changes_per_hour: 20", "max_changes_per_hour: 2"))
    orders_estate(aws, 4)
    runtime = make_runtime(policies=tmp_path)
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True)
    outcomes = sorted(d.outcome for d in report.decisions)
    # capped fixes turn into notifications; with no Slack to deliver them they are reported, and errors say why
    assert outcomes == ["fixed", "fixed", "reported", "reported"]
    capped = [d for d in report.decisions if d.outcome == "reported"]
    assert all("blast-radius cap of 2 changes per hour" in d.detail for d in capped)
    assert report.errors == ["not notified: Slack is not configured (set SAFETYCATCH_SLACK_SECRET and "
                             "SAFETYCATCH_SLACK_CHANNEL)"]
    assert sorted(timeouts(aws, 4)) == [25, 25, 30, 30]


def test_own_fixes_replayed_cause_no_further_action(aws, runtime, calls):
    orders_estate(aws, 2)
    aws.function("pay", tags={"critical": "true"})
    engine = runtime.engine("123456789012", "us-east-1")
    engine.sweep(act=True)
    writes = list(engine.gateway.log)
    assert {w.operation for w in writes} == {"UpdateFunctionConfiguration", "PutFunctionConcurrency"}
    own_events = [api_call({"UpdateFunctionConfiguration": "UpdateFunctionConfiguration20150331v2",
                            "PutFunctionConcurrency": "PutFunctionConcurrency20171031"}[w.operation],
                           {k[0].lower() + k[1:]: v for k, v in w.params.items()}, None,
                           role="safetycatch-bot-role", session="safetycatch") for w in writes]
    calls.clear()
    reports = [handle_event(e, runtime=runtime) for e in own_events]
    assert all(r["skipped"].startswith("the bot's own change") for r in reports)
    assert calls.calls == []
    # even if self_role_patterns were wrong, the re-read finds nothing left to do: the fixes converge
    for e in own_events:
        e["detail"]["userIdentity"] = api_call("x", {})["detail"]["userIdentity"]
        e["detail"]["eventID"] += "-foreign"
    reports = [handle_event(e, runtime=runtime) for e in own_events]
    assert all(r["skipped"] is None and r["findings"] == [] for r in reports)
    assert calls.writes == []


class Throttle:
    """Answers every ``every``-th request with a ThrottlingException before it reaches AWS."""

    def __init__(self, every: int, operations: tuple[str, ...] = ()) -> None:
        self.every, self.operations, self.seen, self.injected = every, operations, 0, 0
        self.lock = threading.Lock()

    def __call__(self, request, operation_name=None, **_):
        if self.operations and operation_name not in self.operations:
            return None
        with self.lock:
            self.seen += 1
            if self.seen % self.every:
                return None
            self.injected += 1
        # moto's own before-send responder still runs after us; point the request where moto does not
        # listen so the throttled call really does not reach the (mock) service.
        request.url = "https://throttled.invalid/"
        body = b'{"message":"Rate exceeded"}'
        response = AWSResponse(request.url, 429, {"x-amzn-ErrorType": "TooManyRequestsException"}, None)
        response._content = body
        return response


def _register(runtime, handler):
    """Throttle Lambda's API (JSON errors; Lambda is what a sweep calls most) ahead of moto's own responder."""
    def hook(request, **kwargs):
        return handler(request, operation_name=kwargs["event_name"].rsplit(".", 1)[-1])
    runtime.session.events.register_first("before-send.lambda", hook)


@pytest.fixture
def no_sleep(monkeypatch):
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)


def test_throttling_is_absorbed_by_botocore_retries(aws, runtime, no_sleep):
    orders_estate(aws, 4)
    aws.sqs_mapping(aws.function("worker"), "q")
    throttle = Throttle(every=2)  # half of all requests
    _register(runtime, throttle)
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True)
    assert throttle.injected >= 5
    assert [e for e in report.errors if not e.startswith("not notified: Slack is not configured")] == []
    assert sorted(d.outcome for d in report.decisions) == ["fixed"] * 4 + ["pending-approval"]
    assert timeouts(aws, 4) == [25, 25, 25, 25]


def test_a_write_that_keeps_failing_is_recorded_failed_not_half_applied(aws, runtime, no_sleep):
    orders_estate(aws, 1)
    throttle = Throttle(every=1, operations=("UpdateFunctionConfiguration",))
    _register(runtime, throttle)
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True)
    (decision,) = report.decisions
    assert decision.outcome == "failed" and decision.detail.startswith("TooManyRequestsException")
    assert throttle.injected == 9  # standard retry mode: the first attempt + max_attempts (8) retries
    fix = runtime.store.get_fix(decision.fix_id)
    assert fix["status"] == "failed" and fix["spec"]["prior"] == {"Timeout": 30}
    assert timeouts(aws, 1) == [30]


@pytest.fixture
def atomic_items():
    """DynamoDB applies each conditional write atomically; moto's in-process backend does not lock, so give it
    that one property (our code's conditions are what is under test, not moto's threading)."""
    with atomic_dynamodb():
        yield


def test_racing_approvers_decide_once_in_dynamodb(aws, runtime, atomic_items):
    init_state_table(runtime.clients(), "race-table")
    store = StateStore(DynamoTable(runtime.clients(), "race-table"))
    approval = store.create_approval("arn:aws:lambda:us-east-1:123456789012:function:f", "p", {"a": 1}, 24)
    barrier = threading.Barrier(8)

    def approve(user: str) -> bool:
        barrier.wait()
        return store.transition_approval(approval["id"], "PENDING", "APPROVED", decided_by=user)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(approve, [f"U{i}" for i in range(8)]))
    assert results.count(True) == 1
    assert store.get_approval(approval["id"])["status"] == "APPROVED"
    assert store.approvals("PENDING") == [] and len(store.approvals("APPROVED")) == 1


def test_change_slots_never_overshoot_under_concurrency(aws, runtime, atomic_items):
    init_state_table(runtime.clients(), "slots")
    store = StateStore(DynamoTable(runtime.clients(), "slots"))
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda _: store.take_change_slot("123456789012", 3), range(12)))
    assert taken.count(True) == 3
