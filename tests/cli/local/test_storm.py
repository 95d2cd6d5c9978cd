"""A storm drops nothing: a deploy's CloudTrail events through the real handler under the bot's concurrency cap,
throttling injected on a share of the calls (the full size runs in ``make bench``; this is the small, deterministic
version). Every event is handled exactly once or kept in the dead-letter queue, and no fix is written twice."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from chalicelib.inventory import Inventory
from safetycatch import redrive
from safetycatch.local import storm
from safetycatch.provision import init_state_table
from tests.conftest import POLICIES

TABLE = "safetycatch-storm"
PLAN = storm.ThrottlePlan(share=0.2, persistent=0.05)


@pytest.fixture
def stack(aws, make_runtime, tmp_path):
    """40 functions of one stack (every 4th behind an API with a 30 s timeout), the bot with its state table and
    the blast-radius cap out of the way, and the dead-letter queue."""
    names, needs_fix = storm.seed_stack(aws, 40, api_every=4)
    runtime = make_runtime(policies=storm.storm_policies(tmp_path / "policies", POLICIES), table=TABLE)
    init_state_table(runtime.clients(), TABLE)
    url = aws.client("sqs").create_queue(QueueName="safetycatch-test-dead-letters")["QueueUrl"]
    with storm.atomic_dynamodb():
        yield runtime, names, needs_fix, url


def _plan_of(events: list[dict]) -> dict[str, int]:
    return {e["detail"]["eventID"]: PLAN.failing_attempts(e["detail"]["eventID"]) for e in events}


def test_a_throttled_deploy_storm_drops_nothing_and_writes_nothing_twice(stack, aws):
    runtime, names, needs_fix, url = stack
    events = storm.deploy_events(names, parallel=8, duplicate_every=25)
    plans = _plan_of(events)
    assert len(events) == 5 * 40 + 8 and len(plans) == 200, "200 events, 8 delivered twice"
    always = {e for e, n in plans.items() if n > runtime_retries()}
    assert always and {1, 2} <= set(plans.values()), "the plan exercises retries and the dead-letter queue"

    run = storm.Storm(runtime, runtime.clients()("sqs"), url, concurrency=4, plan=PLAN)
    report = run.run(events)
    assert report.problems(run.injector.writes) == []
    dead_events = {report.event_ids[d] for d in report.dead_lettered}
    assert dead_events == always, "exactly the events throttled on every attempt are dead-lettered"
    assert set(report.acted()) == set(plans) - always and set(report.acted().values()) == {1}
    assert set(report.dead_lettered.values()) == {"RetriesExhausted"}
    assert report.retries >= sum(min(n, 3) for n in plans.values() if n) - 8 * 3  # duplicates may dedupe early
    fixed_by_storm = {f for (op, f), n in run.injector.writes.items() if op == "UpdateFunctionConfiguration"}
    lost_functions = {arn for arn in needs_fix if all(
        e["detail"]["eventID"] in always for e in storm.function_events(arn.rsplit(":", 1)[-1]))}
    assert fixed_by_storm == needs_fix - lost_functions and set(run.injector.writes.values()) == {1}

    # What the queue holds is Lambda's on-failure record of each dead-lettered delivery; redrive finishes the job.
    sqs = runtime.clients()("sqs")
    run_again = redrive.redrive(runtime, sqs, url, acting=True)
    assert (run_again.deleted, run_again.kept) == (len(report.dead_lettered), 0)
    assert {e["message"]["source"] for e in run_again.events} == {"lambda-destination"}
    assert {e["message"]["reason"][:120] for e in run_again.events} == {
        "RetriesExhausted: TooManyRequestsException: An error occurred (TooManyRequestsException) when calling the "
        "GetFunction op"}
    redriven = Counter(e["event_id"] for e in run_again.events if not e.get("duplicate"))
    assert set(redriven) == always and set(redriven.values()) == {1}, "each lost event acted on once"
    assert set(run.injector.writes.values()) == {1}, "no fix written twice, storm and redrive together"
    assert {f for (_, f) in run.injector.writes} == needs_fix


def runtime_retries() -> int:
    return storm.EVENT_HANDLER.max_retries + 1  # attempts Lambda makes: the first and its retries


def test_events_older_than_the_maximum_age_go_to_the_queue_unhandled(stack):
    """Lambda drops an event that waited longer than MaximumEventAgeInSeconds (the bot throttled all along); with
    the destination it is kept instead, with the condition EventAgeExceeded."""
    runtime, names, _, url = stack
    ticks = iter(range(0, 10**6, 4000))  # every look at the clock is 4,000 s later: older than the hour
    run = storm.Storm(runtime, runtime.clients()("sqs"), url, concurrency=2, clock=lambda: float(next(ticks)))
    report = run.run(storm.function_events(names[0]))
    assert set(report.dead_lettered.values()) == {"EventAgeExceeded"} and len(report.dead_lettered) == 5
    assert report.handled == {} and run.injector.writes == Counter()
    letters = [redrive.parse(m) for m in runtime.clients()("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]]
    assert {(letter.source, letter.reason) for letter in letters} == {("lambda-destination", "EventAgeExceeded")}
    assert sorted(letter.payload["detail"]["eventID"] for letter in letters) == sorted(
        e["detail"]["eventID"] for e in storm.function_events(names[0]))


def test_two_events_racing_on_one_function_write_the_fix_once(stack, monkeypatch):
    """Both read the function before either writes (a barrier holds them there): the claim lets one write."""
    runtime, names, needs_fix, _ = stack
    name = sorted(needs_fix)[0].rsplit(":", 1)[-1]
    _, config, tag, *_ = storm.function_events(name)  # both can find the timeout (a code change cannot)
    barrier, original = threading.Barrier(2), Inventory.functions

    def read_then_wait(self, refs):
        snapshots = original(self, refs)
        barrier.wait(timeout=30)
        return snapshots

    monkeypatch.setattr(Inventory, "functions", read_then_wait)
    run = storm.Storm(runtime, runtime.clients()("sqs"), "unused", concurrency=2)
    report = run.run([config, tag])
    outcomes = sorted((f["outcome"], f.get("detail", "")) for r in report.handled.values() for f in r["findings"])
    assert outcomes == [("fixed", ""), ("reported", "a concurrent event about the same change is applying this "
                                                    "fix; nothing more to do")]
    assert run.injector.writes == Counter({("UpdateFunctionConfiguration", f"arn:aws:lambda:us-east-1:123456789012:"
                                                                          f"function:{name}"): 1})


def test_the_storm_is_a_cloudformation_deploy():
    events = storm.function_events("orders-api")
    assert [e["detail"]["eventName"] for e in events] == [
        "UpdateFunctionCode20150331v2", "UpdateFunctionConfiguration20150331v2", "TagResource20170331v2",
        "UntagResource20170331v2", "AddPermission20150331v2"]
    identity = events[0]["detail"]["userIdentity"]
    assert identity["sessionContext"]["sessionIssuer"]["arn"] == "arn:aws:iam::123456789012:role/cfn-deploy-role"
    assert identity["invokedBy"] == "cloudformation.amazonaws.com"
    again = storm.function_events("orders-api")
    assert [(e["id"], e["detail"]["eventID"]) for e in events] == [(e["id"], e["detail"]["eventID"]) for e in again], \
        "deterministic ids: the throttling plan is reproducible"
    assert Path(storm.__file__).parent.parts[-2:] == ("safetycatch", "local"), "dev-only: never in the Lambda package"
