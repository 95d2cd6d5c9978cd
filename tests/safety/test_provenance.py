"""Only AWS's word and a verified approver's click make the bot write (issue 24, DESIGN "Trust and provenance").

Each test performs one attack on moto by someone who can write to the bot's plumbing (``sqs:SendMessage`` on a
dead-letter or the sweep queue, ``lambda:InvokeFunction`` on one of the bot's functions) and checks that nothing
is written. Each failed against the code before its fix (the closing note of issue 24 quotes the failures).

moto has no AWS Health API: ``tests/world/health_support.py`` answers DescribeEventDetails / DescribeAffectedEntities
with a botocore Stubber on the real ``health`` client of the notice's account; without a stub moto answers 404
"Not yet implemented", which the bot treats as "the Health API cannot be read".
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from chalice.test import Client

from chalicelib.bot.handlers import handle_event
from chalicelib.store.state import table_definition
from safetycatch.local.evidence import health_event
from safetycatch.local.sandbox import member_sandbox
from safetycatch.main import main
from tests.conftest import POLICIES
from tests.world.health_support import stub_health

ACCOUNT, MEMBER, REGION = "123456789012", "111111111111", "us-east-1"
TABLE = "safetycatch-dev"  # .chalice/config.json, stage dev
DLQ = "safetycatch-prod-dead-letters"


def _arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def _reserved(account_sandbox, name: str) -> int | None:
    answer = account_sandbox.client("lambda").get_function_concurrency(FunctionName=name)
    return answer.get("ReservedConcurrentExecutions")


@pytest.fixture
def deployed(aws, monkeypatch):
    """The bot as deployed: its state table, the repo's policies, enforce mode in SSM."""
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))
    return aws


def _lambda_record(event: dict, function: str) -> str:
    """An on-failure record as Lambda puts it in the dead-letter queue (tests/cli/test_redrive.py has the shape)."""
    return json.dumps({
        "version": "1.0", "timestamp": "2026-12-01T09:30:05.568Z",
        "requestContext": {"requestId": "e4b46cbf-b738-4f2e-8880-a18cdf61200e", "condition": "RetriesExhausted",
                           "functionArn": f"{_arn('safetycatch-prod-' + function)}:$LATEST",
                           "approximateInvokeCount": 3},
        "requestPayload": event, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "TooManyRequestsException", "errorMessage": "Rate exceeded"}})


# -- 1. a Health notice is checked with AWS Health before anything is killed ------------------------------------


def test_a_made_up_health_notice_redriven_from_the_dead_letter_queue_kills_nothing(deployed, monkeypatch, capsys):
    """Attack: put a made-up "AWS Health Event" naming a function outside kill-switch scope into the dead-letter
    queue and let the operator run ``safetycatch redrive --fix`` (what the dead-letter alarm tells them to do).
    Before: reserved concurrency 40 -> 0."""
    aws = deployed
    aws.function("reports")
    aws.client("lambda").put_function_concurrency(FunctionName="reports", ReservedConcurrentExecutions=40)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    monkeypatch.setenv("SAFETYCATCH_DLQ", DLQ)
    sqs.send_message(QueueUrl=url, MessageBody=_lambda_record(health_event([_arn("reports")]), "on_lambda_health"))
    assert main(["redrive", "--fix", "--format", "json"]) in (0, 1)
    capsys.readouterr()
    assert _reserved(aws, "reports") == 40


def test_a_direct_invoke_of_the_health_handler_kills_nothing_in_the_bot_or_a_member_account(deployed, monkeypatch):
    """Attack: ``lambda:InvokeFunction`` on ``on_lambda_health`` with a made-up notice, once for a function of the
    bot's account outside kill-switch scope (40) and once for a member's (50, reached through the member role).
    Before: both throttled to 0."""
    import app as chalice_app

    aws = deployed
    aws.client("ssm").put_parameter(Name="/safetycatch/dev/mode", Value="enforce", Type="String")
    aws.function("reports")
    aws.client("lambda").put_function_concurrency(FunctionName="reports", ReservedConcurrentExecutions=40)
    member = member_sandbox(MEMBER, REGION)
    member.function("ledger")
    member.client("lambda").put_function_concurrency(FunctionName="ledger", ReservedConcurrentExecutions=50)
    with Client(chalice_app.app) as client:
        own = client.lambda_.invoke("on_lambda_health", health_event([_arn("reports")])).payload
        theirs = client.lambda_.invoke("on_lambda_health", health_event([_arn("ledger", MEMBER)],
                                                                        account=MEMBER)).payload
    assert own["findings"] == [] and "nothing killed" in own["skipped"]
    assert theirs["findings"] == [] and "nothing killed" in theirs["skipped"]
    assert _reserved(aws, "reports") == 40 and _reserved(member, "ledger") == 50


def test_a_notice_aws_health_does_not_confirm_kills_nothing(aws, runtime, calls):
    """The Health API, read in the notice's own account, decides: an unknown event, an upcoming or old one, another
    region or event type, or entities that are not the notice's, kill nothing; an in-scope function is needed."""
    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    old = datetime.now(timezone.utc) - timedelta(days=2)
    cases = {
        "unknown": ({"known": False}, "AWS Health does not know"),
        "upcoming": ({"status": "upcoming"}, "the Health API says the event is upcoming"),
        "old": ({"started": old}, "the Health API last updated the event"),
        "region": ({"region": "eu-west-1"}, "the Health API places the event in eu-west-1"),
        "code": ({"code": "AWS_LAMBDA_OPERATIONAL_ISSUE"}, "the Health API describes"),
        "entities": ({"entities": [_arn("someone-else")]}, "the Health API lists none of the functions"),
        "no plan": ({"error": "SubscriptionRequiredException"}, "the AWS Health API cannot be read"),
        "denied": ({"error": "AccessDeniedException"}, "the AWS Health API cannot be read"),
    }
    for name, (world, reason) in cases.items():
        notice = health_event([_arn("thumbnailer")])
        stubber = stub_health(runtime, notice, **world)
        report = handle_event(notice, runtime=runtime)
        stubber.deactivate()
        assert report["findings"] == [] and reason in (report["skipped"] or ""), (name, report["skipped"])
        assert "nothing killed" in report["skipped"]
    assert calls.writes == [] and _reserved(aws, "thumbnailer") is None


def test_a_notice_aws_health_confirms_kills_only_in_scope_functions_it_lists(aws, runtime):
    """A real notice (the Health API agrees) kills the functions it lists that are in kill-switch scope on a fresh
    read; one the notice names but the Health API does not list, and one out of scope, are reported, not killed."""
    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    aws.function("resizer", tags={"safetycatch:kill-switch": "true"})
    aws.function("reports")
    aws.client("lambda").put_function_concurrency(FunctionName="reports", ReservedConcurrentExecutions=40)
    notice = health_event([_arn("thumbnailer"), _arn("resizer"), _arn("reports")])
    stub_health(runtime, notice, entities=[_arn("thumbnailer"), _arn("reports")])
    report = handle_event(notice, runtime=runtime)
    assert [(f["function"], f["outcome"]) for f in report["findings"]] == [(_arn("thumbnailer"), "fixed")]
    assert "confirmed with the Health API" in report["findings"][0]["message"] or \
        "confirmed with the Health API" in runtime.store.audit_trail(_arn("thumbnailer"))[0]["context"]
    assert any("reports not killed: reports is not in kill-switch scope" in e for e in report["errors"])
    assert any("resizer not killed: the Health API does not list it" in e for e in report["errors"])
    assert (_reserved(aws, "thumbnailer"), _reserved(aws, "resizer"), _reserved(aws, "reports")) == (0, None, 40)


def test_a_member_notice_is_read_back_in_the_member_account(aws, runtime):
    """The Health API is read with the member role, in the member account the notice is about."""
    member = member_sandbox(MEMBER, REGION)
    member.function("ledger", tags={"safetycatch:kill-switch": "true"})
    member.client("lambda").put_function_concurrency(FunctionName="ledger", ReservedConcurrentExecutions=50)
    notice = health_event([_arn("ledger", MEMBER)], account=MEMBER)
    stubber = stub_health(runtime, notice)
    report = handle_event(notice, runtime=runtime)
    stubber.assert_no_pending_responses()
    assert [f["outcome"] for f in report["findings"]] == ["fixed"] and _reserved(member, "ledger") == 0


def test_health_is_read_in_its_failover_region_when_us_east_1_cannot_be_reached(aws, runtime, calls):
    """AWS Health has two regional endpoints, active-passive: us-east-1, failing over to us-east-2 (AWS Health User
    Guide, "Accessing the AWS Health API"; General Reference, "AWS Health endpoints"). us-east-1 unreachable
    (botocore's EndpointConnectionError): the notice is read back in us-east-2 and, confirmed there, kills; a
    notice us-east-2 does not confirm kills nothing; neither reachable: nothing killed, the event is retried."""
    from botocore.exceptions import EndpointConnectionError

    from tests.world.health_support import unreachable

    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    aws.function("resizer", tags={"safetycatch:kill-switch": "true"})
    unreachable(runtime, ACCOUNT)
    refused = health_event([_arn("resizer")])
    stubber = stub_health(runtime, refused, known=False, endpoint="us-east-2")
    report = handle_event(refused, runtime=runtime)
    stubber.deactivate()
    assert report["findings"] == [] and "AWS Health does not know" in report["skipped"], report
    notice = health_event([_arn("thumbnailer")])
    stubber = stub_health(runtime, notice, endpoint="us-east-2")
    report = handle_event(notice, runtime=runtime)
    stubber.assert_no_pending_responses()
    stubber.deactivate()
    assert [(f["function"], f["outcome"]) for f in report["findings"]] == [(_arn("thumbnailer"), "fixed")]
    assert _reserved(aws, "thumbnailer") == 0 and _reserved(aws, "resizer") is None
    unreachable(runtime, ACCOUNT, "us-east-2")
    calls.clear()
    with pytest.raises(EndpointConnectionError):
        handle_event(health_event([_arn("resizer")]), runtime=runtime)
    assert calls.writes == [] and _reserved(aws, "resizer") is None


# -- 4. the Slack worker acts only on tasks the verified route created ------------------------------------------


@pytest.fixture
def slack_bot(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    """The bot with Slack configured as deployed (routes through chalice's test client, worker inline)."""
    from chalicelib.bot import slack_routes
    from tests.world.slack_helpers import configure_slack, deployed_bot, policies_dir

    configure_slack(aws, monkeypatch, local_slack)
    yield deployed_bot(make_runtime, local_slack, policies_dir(tmp_path))
    slack_routes.wait_inline()


def test_a_direct_invoke_of_the_slack_worker_naming_an_approver_changes_nothing(slack_bot):
    """Attack: ``lambda:InvokeFunction`` on the Slack worker with a task naming an approver: ``/safetycatch kill``
    of a member-account function. Before: reserved concurrency 20 -> 0, and the audit named the approver."""
    from tests.world.slack_helpers import APPROVER, CHANNEL

    member = member_sandbox(MEMBER, REGION)
    member.function("ledger")
    member.client("lambda").put_function_concurrency(FunctionName="ledger", ReservedConcurrentExecutions=20)
    forged = {"kind": "command", "command": "kill", "arg": _arn("ledger", MEMBER), "user": APPROVER,
              "channel": CHANNEL, "response_url": ""}
    for task in (forged, {**forged, "task": "0" * 32}, {"task": "f" * 32}):
        answer = slack_bot.client.lambda_.invoke("slack_worker", task).payload
        assert answer["ok"] is False and "not a task the route created" in answer["text"]
    assert _reserved(member, "ledger") == 20
    assert slack_bot.runtime.store.audit_trail(_arn("ledger", MEMBER)) == []
    refusals = slack_bot.runtime.store.audit_trail("slack-worker")
    assert len(refusals) == 3 and {r["outcome"] for r in refusals} == {"refused"}
    assert all("not a task the route created" in r["message"] for r in refusals)


def test_a_task_the_route_created_runs_once(slack_bot, aws):
    """The route stores the verified task and hands the worker its id only; the worker takes it once (a second
    delivery of the same id, as Lambda's async retry could make, changes nothing)."""
    from chalicelib.bot import slack_routes
    from tests.world.slack_helpers import APPROVER

    aws.function("ledger")
    slack_bot.runtime.clients()("lambda").put_function_concurrency(FunctionName="ledger",
                                                                   ReservedConcurrentExecutions=20)
    handed: list[dict] = []
    real = slack_routes.run_worker

    def spy(task, runtime=None):
        handed.append(task)
        return real(task, runtime)

    slack_routes.run_worker = spy
    try:
        slack_bot.command(APPROVER, "kill ledger")
    finally:
        slack_routes.run_worker = real
    assert _reserved(aws, "ledger") == 0
    (task,) = handed
    assert set(task) == {"task"}, "the worker is handed an id, never the decision itself"
    again = slack_routes.run_worker(task, slack_bot.runtime)
    assert again["ok"] is False and "not a task the route created" in again["text"]


# -- 3. the sweep queue carries only runs the bot started -------------------------------------------------------

SWEEP_QUEUE = "safetycatch-dev-sweep"


@pytest.fixture
def sweep_bot(deployed, monkeypatch, make_runtime):
    """The deployed bot with a sweep queue over one planned member scope (us-east-1), and a member the attacker
    wants swept in eu-west-1: a function behind an API with Timeout 30 (apigw-timeout fixes it to 25 on sight)."""
    from chalicelib.bot import handlers

    deployed.client("sqs").create_queue(QueueName=SWEEP_QUEUE)
    monkeypatch.setenv("SAFETYCATCH_SWEEP_QUEUE", SWEEP_QUEUE)
    monkeypatch.setenv("SAFETYCATCH_SWEEP_ACCOUNTS", MEMBER)
    monkeypatch.setenv("SAFETYCATCH_SWEEP_REGIONS", "us-east-1")
    target = member_sandbox(MEMBER, "eu-west-1")
    target.rest_api(target.function("orders-api", timeout=30), path="orders")
    runtime = make_runtime(table=TABLE)
    handlers.reset_runtime(runtime)
    return runtime, target


def _timeout(sandbox, name: str) -> int:
    return sandbox.client("lambda").get_function(FunctionName=name)["Configuration"]["Timeout"]


def _work(run: str, account: str = MEMBER, region: str = "eu-west-1") -> dict:
    body = json.dumps({"run": run, "account": account, "region": region})
    return {"Records": [{"messageId": f"m-{run[:6]}-{region}", "body": body, "eventSource": "aws:sqs",
                         "attributes": {"ApproximateReceiveCount": "1"}}]}


def test_a_sweep_message_for_a_run_the_bot_never_started_sweeps_nothing(sweep_bot, captured_log):
    """Attack: ``sqs:SendMessage`` on the sweep queue (or a direct invoke of ``sweep_worker``) with any 32-hex run,
    an org account and a region. Before: that scope was swept and fixed (Timeout 30 -> 25), with no digest."""
    import app as chalice_app

    runtime, target = sweep_bot
    with Client(chalice_app.app) as client:
        for _ in range(2):  # the same message redelivered: dropped again, reported once
            answer = client.lambda_.invoke("sweep_worker", _work("ab" * 16)).payload
            assert answer == {"batchItemFailures": []}, "dropped, not retried into the dead-letter queue"
    assert _timeout(target, "orders-api") == 30
    dropped = [json.loads(line) for line in captured_log.getvalue().splitlines() if "sweep message dropped" in line]
    assert len(dropped) == 1 and "no sweep run " + "ab" * 16 in dropped[0]["reason"]


def test_a_sweep_message_for_a_scope_outside_its_run_or_a_stale_run_sweeps_nothing(sweep_bot):
    """A real run's id does not stretch to scopes it did not plan, nor beyond one sweep interval after its
    start; the planned scope itself is swept."""
    from chalicelib.org import fanout

    runtime, target = sweep_bot
    run = fanout.start_run(runtime, runtime.clients()("sqs").get_queue_url(QueueName=SWEEP_QUEUE)["QueueUrl"])
    outside = fanout.sweep_batch(runtime, _work(run["run_id"])["Records"])
    assert outside == {"batchItemFailures": []} and _timeout(target, "orders-api") == 30
    planned = member_sandbox(MEMBER, "us-east-1")
    planned.rest_api(planned.function("billing-api", timeout=30), path="billing")
    started = runtime.store.clock()
    runtime.store.clock = lambda: started + fanout.SWEEP_INTERVAL_SECONDS + 1
    stale = fanout.sweep_batch(runtime, _work(run["run_id"], region="us-east-1")["Records"])
    assert stale == {"batchItemFailures": []} and _timeout(planned, "billing-api") == 30
    runtime.store.clock = lambda: started + 60
    fanout.sweep_batch(runtime, _work(run["run_id"], region="us-east-1")["Records"])
    assert _timeout(planned, "billing-api") == 25, "the scope the run planned is swept"


# -- 2. redrive replays only what AWS itself sent -----------------------------------------------------------------


def test_redrive_reports_alarm_and_health_evidence_and_never_acts_on_it(deployed, monkeypatch, capsys):
    """Attack: a dead-letter queue message is whatever its sender wrote. Alarm and Health evidence found there is
    reported, never acted on (the next real alarm, notice or sweep acts), even when it would verify: before, an
    alarm state change of the bot's own alarm put in the queue killed the function on ``redrive --fix``."""
    from chalicelib.bot.handlers import current_runtime
    from safetycatch.local.cloudtrail import api_call
    from safetycatch.local.evidence import alarm_state_change
    from tests.world.runaway_support import loop_metrics

    aws = deployed
    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    runtime = current_runtime()
    handle_event(api_call("TagResource20170331v2", {"resource": _arn("thumbnailer"),
                                                    "tags": {"safetycatch:kill-switch": "true"}}), runtime=runtime)
    loop_metrics(aws, "thumbnailer")
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName="safetycatch-runaway-thumbnailer", StateValue="ALARM", StateReason="loop")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=["safetycatch-runaway-thumbnailer"])["MetricAlarms"]
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    monkeypatch.setenv("SAFETYCATCH_DLQ", DLQ)
    sqs.send_message(QueueUrl=url, MessageBody=_lambda_record(alarm_state_change(alarm), "on_runaway_alarm"))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(health_event([_arn("thumbnailer")])))
    code = main(["redrive", "--fix", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and _reserved(aws, "thumbnailer") is None
    skipped = sorted(e["skipped"] for e in report["events"])
    assert len(skipped) == 2 and all("never acted on from the queue" in s for s in skipped), skipped


def _resolved(value, arns: dict[str, str]):
    """A CloudFormation value with ``Fn::GetAtt [X, Arn]`` replaced by the ARN the stack would give X."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        name = target[0] if isinstance(target, list) else str(target).split(".")[0]
        return arns[name]
    if isinstance(value, dict):
        return {k: _resolved(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, arns) for v in value]
    return value


def test_only_the_rules_and_destinations_that_feed_the_dead_letter_queue_may_send_to_it():
    """Attack: anyone in the bot's account whose identity policy allows ``sqs:SendMessage`` (on ``*``) writes a
    "dead letter". Evaluated as IAM does (tests/world/iam_conditions.py: an explicit Deny in the queue policy wins over
    the identity policy's Allow): before, the queue policy only allowed the rules, and the insider's own Allow
    let the message in."""
    from safetycatch.build import dead_letters
    from tests.world.iam_conditions import decide

    template = {"Resources": {"OnChange": {"Type": "AWS::Serverless::Function", "Properties": {
        "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
        "Events": {"OnChangeEvent": {"Type": "CloudWatchEvent", "Properties": {"Pattern": {}}}}}}}}
    resources = dead_letters.add_dead_letters(template, {"OnChange": "on_config_change"})["Resources"]
    arns = {"DeadLetterQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{DLQ}",
            "OnChangeOnChangeEvent": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/safetycatch-prod-OnChangeEvent-1X",
            "DefaultRole": f"arn:aws:iam::{ACCOUNT}:role/safetycatch-prod"}
    queue_policy = _resolved(resources[dead_letters.QUEUE_POLICY]["Properties"]["PolicyDocument"], arns)
    insider = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}  # the insider's identity policy
    queue = arns["DeadLetterQueue"]

    def send(principal: str, context: dict, identity: list) -> str:
        return decide([*identity, *queue_policy["Statement"]], "sqs:SendMessage", queue, context, principal)

    mallory = f"arn:aws:iam::{ACCOUNT}:user/mallory"
    assert send(mallory, {"aws:PrincipalArn": mallory}, [insider]) == "deny"
    assert send("events.amazonaws.com", {"aws:SourceArn": arns["OnChangeOnChangeEvent"]}, []) == "allow"
    other_rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-elses-rule"
    assert send("events.amazonaws.com", {"aws:SourceArn": other_rule}, []) == "deny"
    role = arns["DefaultRole"]  # Lambda delivers an on-failure record with the function's own role
    assert send(role, {"aws:PrincipalArn": role}, [insider]) == "allow"


@pytest.mark.parametrize("path", ["deploy/member-account.yaml", "deploy/iam-forwarder.yaml"])
def test_only_the_forwarding_rules_may_send_to_a_member_stacks_dead_letter_queue(path):
    """Attack: anyone in a member account (or the bot's us-east-1 IAM forwarder stack) whose identity policy
    allows ``sqs:SendMessage`` on ``*`` writes a "forwarding dead letter" into the stack's queue, which the bot
    reads (doctor) and operators replay. Evaluated as IAM does (tests/world/iam_conditions.py): before, the queue policy
    only allowed the stack's rules and the insider's own Allow let the message in; now an explicit Deny covers
    every sender but the stack's own rules (aws:SourceArn)."""
    from cfnlint.decode import cfn_yaml

    from safetycatch.build import member_template
    from tests.conftest import ROOT
    from tests.world.iam_conditions import decide

    resources = cfn_yaml.loads((ROOT / path).read_text())["Resources"]
    rules = sorted(logical for logical, r in resources.items() if r["Type"] == "AWS::Events::Rule")
    queue = f"arn:aws:sqs:{REGION}:{MEMBER}:safetycatch-prod-forward-dead-letters"
    arns = {member_template.DEAD_LETTERS: queue,
            **{rule: f"arn:aws:events:{REGION}:{MEMBER}:rule/StackSet-safetycatch-{rule}-1X" for rule in rules}}
    policy = _resolved(resources[f"{member_template.DEAD_LETTERS}Policy"]["Properties"]["PolicyDocument"], arns)
    insider = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}

    def send(principal: str, context: dict, identity: list) -> str:
        return decide([*identity, *policy["Statement"]], "sqs:SendMessage", queue, context, principal)

    mallory = f"arn:aws:iam::{MEMBER}:user/mallory"
    assert send(mallory, {"aws:PrincipalArn": mallory}, [insider]) == "deny"
    for rule in rules:
        assert send("events.amazonaws.com", {"aws:SourceArn": arns[rule]}, []) == "allow", rule
    other_rule = f"arn:aws:events:{REGION}:{MEMBER}:rule/someone-elses-rule"
    assert send("events.amazonaws.com", {"aws:SourceArn": other_rule}, [insider]) == "deny"


def test_only_the_scheduler_may_send_to_the_sweep_queue():
    """The sweep queue's policy denies ``sqs:SendMessage`` to anyone but the scheduler's role (before: no policy,
    any identity Allow sent work items)."""
    from safetycatch.build import dead_letters
    from tests.world.iam_conditions import decide

    template = {"Resources": {
        "ScheduledSweep": {"Type": "AWS::Serverless::Function", "Properties": {
            "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
            "Events": {"Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(6 hours)"}}}}},
        "SweepQueue": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    resources = dead_letters.add_dead_letters(template, {"ScheduledSweep": "scheduled_sweep"})["Resources"]
    assert dead_letters.SWEEP_QUEUE_POLICY in resources
    arns = {"SweepQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{SWEEP_QUEUE}",
            "DefaultRole": f"arn:aws:iam::{ACCOUNT}:role/safetycatch-prod"}
    policy = _resolved(resources[dead_letters.SWEEP_QUEUE_POLICY]["Properties"]["PolicyDocument"], arns)
    allow = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}
    mallory = f"arn:aws:iam::{ACCOUNT}:user/mallory"
    for who, expected in ((mallory, "deny"), (arns["DefaultRole"], "allow")):
        verdict = decide([allow, *policy["Statement"]], "sqs:SendMessage", arns["SweepQueue"],
                         {"aws:PrincipalArn": who}, who)
        assert verdict == expected, who


# -- 5. restore and undo compare before they write, every time -----------------------------------------------


def test_a_retried_restore_refuses_over_a_change_made_after_it_failed_half_way(aws, runtime, monkeypatch):
    """Attack (or accident): a restore puts reserved concurrency back to 7, then fails on the mapping; somebody
    sets 1 by hand; the retried restore used to skip the drift check (status undo-failed) and overwrote 1 with 7.
    A retry accepts on each compared value either what the kill set or the prior (what the failed restore may
    have left), and nothing else."""
    from botocore.exceptions import ClientError

    from chalicelib.act.gateway import Gateway
    from chalicelib.killswitch import kill as killswitch
    from chalicelib.people import decisions

    arn = aws.function("thumbnailer")
    aws.sqs_mapping(arn, "jobs")
    lam = aws.client("lambda")
    lam.put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=7)
    fix_id = killswitch.kill(runtime, "thumbnailer", "loop", "alice")["fix_id"]
    real = Gateway.update_event_source_mapping

    def unavailable(self, uuid, **changes):
        raise ClientError({"Error": {"Code": "ServiceException", "Message": "try later"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "UpdateEventSourceMapping")

    monkeypatch.setattr(Gateway, "update_event_source_mapping", unavailable)
    assert killswitch.restore(runtime, "thumbnailer", "alice")["outcome"] == "failed"
    assert lam.get_function_concurrency(FunctionName="thumbnailer")["ReservedConcurrentExecutions"] == 7
    monkeypatch.setattr(Gateway, "update_event_source_mapping", real)
    lam.put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=1)  # the hand-made change
    with pytest.raises(killswitch.KillSwitchError, match="now 1"):
        killswitch.restore(runtime, "thumbnailer", "alice")
    outcome = decisions.decide(runtime, "restore", fix_id, actor="U0APPROVER")
    assert not outcome.ok and "now 1" in outcome.text
    assert lam.get_function_concurrency(FunctionName="thumbnailer")["ReservedConcurrentExecutions"] == 1
    lam.put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=7)  # back as restored
    assert killswitch.restore(runtime, "thumbnailer", "alice")["outcome"] == "restored", "a clean retry goes on"


def test_a_retried_undo_compares_too(aws, runtime, monkeypatch):
    """An undo that failed (undo-failed) is retried through the same drift check: a change made since is kept."""
    from botocore.exceptions import ClientError

    from chalicelib.act.gateway import Gateway
    from chalicelib.people import undo

    aws.function("orders-api")
    spec = {"action": "set-reserved-concurrency", "target": _arn("orders-api"),
            "params": {"ReservedConcurrentExecutions": 80}, "prior": {"ReservedConcurrentExecutions": None}}
    fix_id = runtime.store.store_fix(_arn("orders-api"), "reserved-concurrency", spec)
    runtime.store.mark_fix(fix_id, "applied", "stored")
    lam = aws.client("lambda")
    lam.put_function_concurrency(FunctionName="orders-api", ReservedConcurrentExecutions=80)

    def unavailable(self, *args, **kwargs):
        raise ClientError({"Error": {"Code": "ServiceException", "Message": "try later"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "DeleteFunctionConcurrency")

    monkeypatch.setattr(Gateway, "delete_function_concurrency", unavailable)
    assert undo.undo_fix(runtime, fix_id, "alice").status == "undo-failed"
    monkeypatch.undo()
    lam.put_function_concurrency(FunctionName="orders-api", ReservedConcurrentExecutions=30)
    retried = undo.undo_fix(runtime, fix_id, "alice")
    assert not retried.ok and "now 30" in retried.text
    assert lam.get_function_concurrency(FunctionName="orders-api")["ReservedConcurrentExecutions"] == 30
    lam.put_function_concurrency(FunctionName="orders-api", ReservedConcurrentExecutions=80)
    assert undo.undo_fix(runtime, fix_id, "alice").ok, "a retry over no change puts the prior back"
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="orders-api")


# -- 6. a forced alarm after a restore kills nothing ---------------------------------------------------------


def test_forcing_the_bots_alarm_right_after_a_restore_kills_nothing(aws, runtime):
    """Attack: ``cloudwatch:SetAlarmState`` on the bot's own alarm right after a restore. Before: the function was
    killed again, because the confirming window still held the loop from before the kill. The window starts
    after the function's last restore; a loop that resumes after it is still killed."""
    from chalicelib.killswitch import kill as killswitch
    from safetycatch.local.cloudtrail import api_call
    from safetycatch.local.evidence import alarm_state_change
    from tests.world.runaway_support import loop_metrics

    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    handle_event(api_call("TagResource20170331v2", {"resource": _arn("thumbnailer"),
                                                    "tags": {"safetycatch:kill-switch": "true"}}), runtime=runtime)
    loop_metrics(aws, "thumbnailer")
    cloudwatch = aws.client("cloudwatch")
    name = "safetycatch-runaway-thumbnailer"

    def forced() -> dict:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="forced")
        return alarm_state_change(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])

    assert handle_event(forced(), runtime=runtime)["findings"][0]["outcome"] == "fixed"
    assert killswitch.restore(runtime, "thumbnailer", "alice")["outcome"] == "restored"
    report = handle_event(forced(), runtime=runtime)
    assert report["findings"] == [] and "do not show a breach" in report["skipped"], report["skipped"]
    assert _reserved(aws, "thumbnailer") is None


def test_a_loop_that_resumes_after_the_restore_is_killed_again(aws, runtime):
    """The other side of the boundary: the restore was ten minutes ago (the state table runs on the test world's
    CloudWatch clock), and the function has looped since (its own metrics, evaluated by CloudWatch until the
    bot's alarm goes to ALARM: no SetAlarmState, this is not an attack): the alarm's event kills it again."""
    from chalicelib.killswitch import kill as killswitch
    from safetycatch.local.cloudtrail import api_call
    from tests.world.runaway_support import alarm_from_metrics, cloudwatch_of

    world = cloudwatch_of(aws)
    runtime.store.clock = world.epoch
    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    handle_event(api_call("TagResource20170331v2", {"resource": _arn("thumbnailer"),
                                                    "tags": {"safetycatch:kill-switch": "true"}}), runtime=runtime)
    killswitch.kill(runtime, "thumbnailer", "loop", "alice")
    assert killswitch.restore(runtime, "thumbnailer", "alice")["outcome"] == "restored"
    world.run(10)
    event = alarm_from_metrics(aws, "thumbnailer")  # the loop's minutes: after the restore
    assert handle_event(event, runtime=runtime)["findings"][0]["outcome"] == "fixed"
    assert _reserved(aws, "thumbnailer") == 0


# -- 7. automatic reservations are bounded in total -----------------------------------------------------------


def test_automatic_reservations_are_bounded_in_total(aws, runtime, stub_only):
    """Attack: tag nine functions ``critical=true``, each with a real peak of 66: each reservation (99) is under
    max_auto_reservation_share (10 % of 1,000), and before, all nine were made: 891 of 1,000 reserved, nobody
    asked. The sum of automatic reservations per account and region stays within
    max_auto_reservation_total_share (0.3: 300); beyond it the fix waits for approval and says how much is
    already reserved automatically. moto has no GetAccountSettings: the Stubber answers that call only."""
    from safetycatch.local.cloudtrail import api_call

    stubber = stub_only(runtime.clients()("lambda"), "GetAccountSettings")
    for _ in range(9):
        stubber.add_response("get_account_settings", {"AccountLimit": {
            "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000}, "AccountUsage": {}})
    outcomes = []
    for i in range(9):
        name = f"payments-{i}"
        arn = aws.function(name, tags={"critical": "true"})
        aws.concurrency_history(name, peak=66)
        event = api_call("TagResource20170331v2", {"resource": arn, "tags": {"critical": "true"}})
        (finding,) = [f for f in handle_event(event, runtime=runtime)["findings"]
                      if f["policy"] == "reserved-concurrency"]
        assert finding["fix"]["params"] == {"ReservedConcurrentExecutions": 99}
        outcomes.append((finding["outcome"], finding.get("detail", "")))
    assert [o for o, _ in outcomes] == ["fixed"] * 3 + ["pending-approval"] * 6
    assert "297 already reserved automatically in 123456789012 us-east-1" in outcomes[3][1]
    assert "max_auto_reservation_total_share 0.3" in outcomes[3][1]
    reserved = [aws.client("lambda").get_function_concurrency(FunctionName=f"payments-{i}").get(
        "ReservedConcurrentExecutions") for i in range(9)]
    assert sum(r or 0 for r in reserved) == 297


def _reservation_world(deployed, make_runtime, stub_only, instances: int = 2) -> list:
    """``instances`` Lambda instances of the bot (their own runtime, session and clients) on one state table in
    moto. moto has no GetAccountSettings: each instance's Stubber answers that call only (limit 1,000)."""
    runtimes = [make_runtime() for _ in range(instances)]
    for runtime in runtimes:
        stubber = stub_only(runtime.clients()("lambda"), "GetAccountSettings")
        for _ in range(8):
            stubber.add_response("get_account_settings", {"AccountLimit": {
                "ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000}, "AccountUsage": {}})
    return runtimes


def _critical(aws, name: str) -> dict:
    """A function tagged ``critical=true`` with a real peak of 66 (the fix reserves 99), and its tagging event."""
    from safetycatch.local.cloudtrail import api_call

    arn = aws.function(name, tags={"critical": "true"})
    aws.concurrency_history(name, peak=66)
    return api_call("TagResource20170331v2", {"resource": arn, "tags": {"critical": "true"}})


def _reservation(report: dict) -> dict:
    (finding,) = [f for f in report["findings"] if f["policy"] == "reserved-concurrency"]
    return finding


def test_concurrent_automatic_reservations_stay_within_the_total(deployed, make_runtime, stub_only, monkeypatch):
    """Attack (a race, no forgery): two events handled at once by two Lambda instances. 198 of the bound 300 are
    already reserved automatically; each instance reads the total (198 + 99 = 297: within), then both write:
    before, 396 of 1,000 were reserved automatically. The events are interleaved deterministically: the second
    instance handles its event entirely at the moment the first one is about to write (after its check). The
    claim is a conditional update of a per-account-region counter in the state table: one of the two waits for
    approval."""
    from chalicelib.act import fixes

    one, two = _reservation_world(deployed, make_runtime, stub_only)
    for i in range(2):
        assert _reservation(handle_event(_critical(deployed, f"payments-{i}"), runtime=one))["outcome"] == "fixed"
    first, second = _critical(deployed, "payments-2"), _critical(deployed, "payments-3")
    real_apply, reports = fixes.apply, []

    def apply_after_the_other_instance(gateway, fix):
        if not reports:  # the first instance is about to write: the second one runs its whole event now
            reports.append(handle_event(second, runtime=two))
        return real_apply(gateway, fix)

    monkeypatch.setattr(fixes, "apply", apply_after_the_other_instance)
    outcome = _reservation(handle_event(first, runtime=one))
    reserved = [_reserved(deployed, f"payments-{i}") or 0 for i in range(4)]
    assert sum(reserved) <= 300, f"{sum(reserved)} reserved automatically: {reserved}"
    assert sorted([outcome["outcome"], _reservation(reports[0])["outcome"]]) == ["fixed", "pending-approval"]
    assert sum(reserved) == 297


def _ledger_total(deployed) -> int:
    item = deployed.client("dynamodb").get_item(TableName=TABLE, Key={
        "pk": {"S": f"auto-reservations#{ACCOUNT}#{REGION}"}, "sk": {"S": "#total"}}, ConsistentRead=True)["Item"]
    return int(item["total"]["N"])


def test_a_reservation_not_made_or_undone_gives_its_share_back(deployed, make_runtime, stub_only, monkeypatch):
    """The claim is released when the write fails (the function was deleted between the read and the write: moto
    answers ResourceNotFoundException) and when the fix is undone (the ledger's total in DynamoDB)."""
    from chalicelib.act import fixes
    from chalicelib.people import undo

    (one,) = _reservation_world(deployed, make_runtime, stub_only, instances=1)
    kept = _reservation(handle_event(_critical(deployed, "payments-0"), runtime=one))
    assert kept["outcome"] == "fixed" and _ledger_total(deployed) == 99
    doomed, real_apply = _critical(deployed, "payments-1"), fixes.apply

    def delete_first(gateway, fix):
        deployed.client("lambda").delete_function(FunctionName="payments-1")
        return real_apply(gateway, fix)

    monkeypatch.setattr(fixes, "apply", delete_first)
    assert _reservation(handle_event(doomed, runtime=one))["outcome"] == "failed"
    assert _ledger_total(deployed) == 99, "a reservation that was not made keeps no share"
    assert undo.undo_fix(one, kept["fix_id"], "alice").ok
    assert _ledger_total(deployed) == 0
    assert _reserved(deployed, "payments-0") is None


def test_the_total_share_is_a_validated_setting(tmp_path):
    """policies/settings.yaml has max_auto_reservation_total_share (default 0.3); lint refuses what is out of
    bounds, and one below the per-reservation share."""
    import shutil

    import yaml

    from chalicelib.policy import settings as settings_module
    from tests.conftest import POLICIES

    assert settings_module.load(str(POLICIES)).settings.max_auto_reservation_total_share == 0.3
    for value, message in ((1.5, "max_auto_reservation_total_share"), (0.05, "max_auto_reservation_share")):
        target = tmp_path / f"p{value}"
        shutil.copytree(POLICIES, target)
        doc = yaml.safe_load((target / "settings.yaml").read_text())
        doc["max_auto_reservation_total_share"] = value
        (target / "settings.yaml").write_text(yaml.safe_dump(doc))
        with pytest.raises(settings_module.PolicyError, match=message):
            settings_module.load(str(target))


# -- 8. role names are matched where they live -----------------------------------------------------------------


def test_a_role_named_like_the_member_role_in_the_bots_own_account_hides_nothing(aws, make_runtime, tmp_path):
    """Attack: in the bot's own account, create a role named ``safetycatch-remediation`` (the member role's name)
    and deploy Timeout 30 behind an API with it. The packaged settings matched the member role as
    ``arn:aws:iam::*:role/safetycatch-remediation``, so the deploy was skipped as "the bot's own change". The
    member role is the bot's only in member accounts (the accounts of ``own_functions`` are the bot's)."""
    from chalicelib.policy.settings import from_json
    from safetycatch.build import steps as build
    from safetycatch.local.cloudtrail import api_call

    compiled = tmp_path / "compiled.json"
    build.compile_policies(target=compiled, stage="prod", account=ACCOUNT, region=REGION)
    runtime = make_runtime()
    runtime.policy_set = from_json(json.loads(compiled.read_text()))  # as packaged for the bot's account
    settings = runtime.settings
    assert settings.is_own_role(f"arn:aws:iam::{MEMBER}:role/safetycatch-remediation"), "still the bot in a member"
    assert not settings.is_own_role(f"arn:aws:iam::{ACCOUNT}:role/safetycatch-remediation")
    arn = aws.function("orders-api", timeout=30)
    aws.rest_api(arn, path="orders")
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30},
                     role="safetycatch-remediation", session="mallory")
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and [f["outcome"] for f in report["findings"]] == ["fixed"]
    assert aws.client("lambda").get_function(FunctionName="orders-api")["Configuration"]["Timeout"] == 25


def test_the_example_scp_protects_the_member_role():
    """deploy/scp-protect-tags.yaml denies changing, deleting or creating the member role (and its policies) to
    everyone but the administrators who deploy it."""
    import yaml

    from tests.conftest import ROOT

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)
                                                                      if isinstance(node, yaml.ScalarNode) else None})
    template = yaml.load((ROOT / "deploy" / "scp-protect-tags.yaml").read_text(), Loader=Loader)
    statements = template["Resources"]["ProtectSafetycatchTags"]["Properties"]["Content"]["Statement"]
    (member,) = [s for s in statements if s.get("Sid") == "ProtectTheMemberRole"]
    assert member["Effect"] == "Deny" and member["Resource"] == "arn:aws:iam::*:role/safetycatch-remediation"
    for action in ("iam:CreateRole", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
                   "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRolePolicy"):
        assert action in member["Action"], action
    assert "ArnNotLike" in member["Condition"] and "aws:PrincipalArn" in member["Condition"]["ArnNotLike"]


# -- 9. least privilege with conditions ---------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["bot", "member"])
def test_the_bots_policy_denies_writes_outside_their_conditions(identity):
    """Evaluated as IAM does (resource-level matching as tests/world/iam_authorization.py, conditions as
    tests/world/iam_conditions.py): the bot's own calls are allowed; the same actions outside the conditions are not -
    scaling an ECS service, attaching a layer with UpdateFunctionConfiguration, an alarm with an action. Before:
    all allowed (the statements had no condition)."""
    from safetycatch.build import iam
    from tests.world import iam_authorization as authz
    from tests.world.iam_conditions import decide, request_context

    policy = iam.bot_policy("prod") if identity == "bot" else authz.member_policy_file()
    statements = policy["Statement"]

    def verdict(service: str, operation: str, params: dict) -> set[str]:
        # a scalable target's ARN ends in an id AWS makes up, not the request's ResourceId: the policy says "*"
        context = ("*",) if service == "application-autoscaling" else ()
        call = authz.Call(service, operation, params, REGION, ACCOUNT if identity == "bot" else MEMBER, identity,
                          context=context)
        return {decide(statements, action, resource, request_context(params))
                for action, resource in authz.requests(call)}

    fn = _arn("orders-api")
    ours = {
        ("application-autoscaling", "RegisterScalableTarget"): {
            "ServiceNamespace": "lambda", "ResourceId": "function:orders-api:live",
            "ScalableDimension": "lambda:function:ProvisionedConcurrency", "MinCapacity": 1, "MaxCapacity": 5},
        ("lambda", "UpdateFunctionConfiguration"): {"FunctionName": fn, "Timeout": 25},
        ("cloudwatch", "PutMetricAlarm"): {"AlarmName": "safetycatch-runaway-orders-api", "EvaluationPeriods": 3,
                                           "ComparisonOperator": "GreaterThanThreshold"},
    }
    outside = {
        ("application-autoscaling", "RegisterScalableTarget"): {
            **ours[("application-autoscaling", "RegisterScalableTarget")], "ServiceNamespace": "ecs",
            "ResourceId": "service/prod/payments", "ScalableDimension": "ecs:service:DesiredCount"},
        ("lambda", "UpdateFunctionConfiguration"): {
            "FunctionName": fn, "Layers": [f"arn:aws:lambda:{REGION}:999999999999:layer:exfiltrate:1"]},
        ("cloudwatch", "PutMetricAlarm"): {
            **ours[("cloudwatch", "PutMetricAlarm")],
            "AlarmActions": [f"arn:aws:ssm:{REGION}:{ACCOUNT}:opsitem:3#CATEGORY=Security"]},
    }
    for (service, operation), params in ours.items():
        assert verdict(service, operation, params) == {"allow"}, (identity, operation)
    for (service, operation), params in outside.items():
        assert "allow" not in verdict(service, operation, params), (identity, operation, params)
