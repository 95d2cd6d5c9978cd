"""IAM changes everywhere: one list of watched CloudTrail changes behind every rule, managed-policy edits, the
us-east-1 forwarding rule for a bot in another region, and a role change re-evaluated in every covered region."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

import app
from chalicelib.bot.handlers import handle_event
from chalicelib.intake import events
from chalicelib.killswitch.evidence import EVIDENCE_RULES
from chalicelib.policy.settings import Settings
from safetycatch.build import member_template
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.sandbox import SandboxAccount
from tests.conftest import EVENTS

ACCOUNT = "123456789012"
SUFFIX = {"aws.lambda": "20150331v2"}
NOT_WATCHED = [("aws.iam", "DeleteRolePolicy"), ("aws.iam", "DetachRolePolicy"), ("aws.iam", "CreateRole"),
               ("aws.s3", "PutBucketNotificationConfiguration"), ("aws.s3", "PutObject"),
               ("aws.ec2", "CreateRouteTable"), ("aws.lambda", "GetFunction20150331v2"),
               ("aws.lambda", "Invoke"), ("aws.apigateway", "GetIntegration"), ("aws.sts", "AssumeRole")]


def _matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching, as moto's EventBridge implements it for put_events."""
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


def _corpus() -> list[dict]:
    """Every recorded fixture, one event per watched name (version suffix where CloudTrail adds one), names that
    are not watched, and a failed call."""
    found = [json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))]
    for source, names in events.WATCHED.items():
        found.extend(api_call(name + SUFFIX.get(source, ""), {}, service=source[4:]) for name in names)
    found.extend(api_call(name, {}, service=source[4:]) for source, name in NOT_WATCHED)
    found.append(api_call("PutRolePolicy", {"roleName": "r"}, service="iam", error_code="AccessDenied"))
    return found


def _watched(event: dict) -> bool:
    detail = event["detail"]
    return (event["detail-type"] == events.CLOUDTRAIL and not detail.get("errorCode")
            and events.base_name(detail["eventName"]) in events.WATCHED.get(event["source"], ()))


def test_the_bot_rules_and_every_forwarding_rule_agree_with_the_one_event_list():
    member = {logical: pattern for logical, (_, pattern) in member_template.forwarding_rules().items()}
    iam_forwarder = member_template.iam_forwarder_template()["Resources"]["ForwardIamChanges"]["Properties"]
    for event in _corpus():
        name = f"{event['source']} {event['detail-type']} {event['detail'].get('eventName', '')}"
        bot = any(_matches(p, event) for p in (app.CONFIG_CHANGES, app.DEPENDENCY_CHANGES))
        if event["detail-type"] == events.CLOUDTRAIL:
            assert bot == _watched(event), f"{name}: the bot's rules and events.WATCHED disagree"
        forwarded = any(_matches(p, event) for p in member.values())
        evidence = any(_matches(p, event) for p in EVIDENCE_RULES.values())
        assert forwarded == (bot or evidence), f"{name}: a member forwards what the bot's rules would not take"
        assert _matches(iam_forwarder["EventPattern"], event) == (bot and event["source"] == "aws.iam"), name
        parsed = events.parse(event, Settings())
        if not bot and event["detail-type"] == events.CLOUDTRAIL and not event["detail"].get("errorCode"):
            assert isinstance(parsed, events.Skip) and parsed.reason.startswith("not a change safetycatch watches")


def test_the_deployed_rules_are_built_from_the_list():
    assert app.CONFIG_CHANGES == events.cloudtrail_pattern(events.CONFIG_SOURCES)
    assert app.DEPENDENCY_CHANGES == events.cloudtrail_pattern(events.DEPENDENCY_SOURCES)
    assert set(events.CONFIG_SOURCES) | set(events.DEPENDENCY_SOURCES) == set(events.WATCHED)
    assert {"CreatePolicyVersion", "SetDefaultPolicyVersion"} <= set(events.IAM_EVENTS)
    assert "PutBucketNotificationConfiguration" not in events.S3_EVENTS, "not a CloudTrail event name"
    assert member_template.IAM_FORWARDER_PATH.read_text() == member_template.render_iam_forwarder(), \
        "run `python -m safetycatch.build iam`"
    with pytest.raises(ValueError, match="not a watched source: aws.sqs"):
        events.cloudtrail_pattern(["aws.sqs"])


# -- managed policy edits ----------------------------------------------------------------------------------

WRITES_JOBS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"}]}
READS_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ReceiveMessage",
                                                       "Resource": "*"}]}


def _worker_with_managed_policy(aws) -> str:
    """``worker`` consumes queue ``jobs``; its role attaches a customer managed policy that only reads."""
    iam = aws.client("iam")
    policy = iam.create_policy(PolicyName="worker-queue", PolicyDocument=json.dumps(READS_ONLY))["Policy"]["Arn"]
    role = aws.execution_role("worker-role")
    iam.attach_role_policy(RoleName="worker-role", PolicyArn=policy)
    worker = aws.client("lambda").create_function(
        FunctionName="worker", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": aws._zip},
        Timeout=10, MemorySize=512)["FunctionArn"]
    aws.sqs_mapping(worker, "jobs")
    return policy


def test_a_new_default_version_of_a_managed_policy_re_evaluates_the_functions_whose_roles_attach_it(aws, runtime):
    policy = _worker_with_managed_policy(aws)
    aws.function("bystander")  # another role: not concerned
    aws.client("iam").create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(WRITES_JOBS),
                                            SetAsDefault=True)
    report = handle_event(api_call("CreatePolicyVersion", {"policyArn": policy, "setAsDefault": True,
                                                           "policyDocument": json.dumps(WRITES_JOBS)}, service="iam"),
                          runtime=runtime)
    assert report["skipped"] is None
    assert report["functions"] == [f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:worker"]
    (finding,) = report["findings"]
    assert finding["policy"] == "recursive-trigger" and "worker → writes SQS queue jobs → triggers worker" in \
        finding["message"]


def test_set_default_policy_version_is_watched_and_a_non_default_version_is_not_a_change(aws, runtime):
    policy = _worker_with_managed_policy(aws)
    iam = aws.client("iam")
    version = iam.create_policy_version(PolicyArn=policy, PolicyDocument=json.dumps(WRITES_JOBS))["PolicyVersion"]
    not_default = handle_event(api_call("CreatePolicyVersion", {"policyArn": policy, "setAsDefault": False,
                                                                "policyDocument": "{}"}, service="iam"),
                               runtime=runtime)
    assert not_default["skipped"] == ("the new policy version is not the default: nothing changes until "
                                      "SetDefaultPolicyVersion")
    iam.set_default_policy_version(PolicyArn=policy, VersionId=version["VersionId"])
    report = handle_event(api_call("SetDefaultPolicyVersion", {"policyArn": policy,
                                                               "versionId": version["VersionId"]}, service="iam"),
                          runtime=runtime)
    assert [f["policy"] for f in report["findings"]] == ["recursive-trigger"]


@pytest.mark.parametrize("arn", ["", "arn:aws:iam::aws:policy/AdministratorAccess", "not-an-arn",
                                 "arn:aws:iam::123456789012:role/worker-role"])
def test_a_policy_event_without_a_customer_policy_arn_is_skipped(arn):
    event = api_call("SetDefaultPolicyVersion", {"policyArn": arn, "versionId": "v2"}, service="iam")
    assert events.parse(event, Settings()).reason == "no customer managed policy ARN in the event"


# -- a bot in another region --------------------------------------------------------------------------------


def _eu_worker(runtime_region: str = "eu-west-1") -> SandboxAccount:
    """A worker in eu-west-1 consuming queue ``jobs`` there, its role able to write that queue: a loop."""
    eu = SandboxAccount(region=runtime_region)
    writes = {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage",
                             "Resource": f"arn:aws:sqs:{runtime_region}:{ACCOUNT}:jobs"}]}
    role = eu.execution_role("eu-worker-role", {"writes-jobs": writes})
    worker = eu.client("lambda").create_function(
        FunctionName="eu-worker", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": eu._zip},
        Timeout=10, MemorySize=512)["FunctionArn"]
    eu.sqs_mapping(worker, "jobs")
    return eu


def test_a_role_change_re_evaluates_its_functions_in_every_region_the_bot_covers(aws, make_runtime, monkeypatch):
    _eu_worker()
    monkeypatch.setenv("SAFETYCATCH_SWEEP_REGIONS", "us-east-1,eu-west-1")
    runtime = make_runtime()
    assert runtime.covered_regions == ("us-east-1", "eu-west-1")
    event = api_call("PutRolePolicy", {"roleName": "eu-worker-role", "policyName": "writes-jobs"}, service="iam")
    report = handle_event(event, runtime=runtime)  # recorded in us-east-1, as every IAM event is
    assert report["skipped"] is None
    assert report["functions"] == [f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:eu-worker"]
    assert [f["policy"] for f in report["findings"]] == ["recursive-trigger"]

    monkeypatch.delenv("SAFETYCATCH_SWEEP_REGIONS")
    only_home = handle_event(api_call("PutRolePolicy", {"roleName": "eu-worker-role", "policyName": "writes-jobs"},
                                      service="iam"), runtime=make_runtime())
    assert only_home["skipped"] == "no function is affected by this change", "without the region, not covered"


def test_a_malformed_regions_setting_is_one_clear_line(aws, monkeypatch):
    from chalicelib.bot.runtime import ConfigError, Runtime

    monkeypatch.setenv("SAFETYCATCH_SWEEP_REGIONS", "us-east-1,Europe")
    with pytest.raises(ConfigError, match="^SAFETYCATCH_SWEEP_REGIONS: expected region names"):
        Runtime.from_env()


def test_the_us_east_1_rule_forwards_iam_changes_to_a_bot_in_another_region(aws, make_runtime, monkeypatch):
    """deploy/iam-forwarder.yaml on moto's CloudFormation in us-east-1, the bot's own rule (app.py's pattern) on
    its eu-west-1 bus: an IAM change put on us-east-1's bus arrives in eu-west-1 and is acted on there."""
    eu = _eu_worker()
    aws.client("cloudformation").create_stack(
        StackName="safetycatch-dev-iam-events", TemplateBody=member_template.IAM_FORWARDER_PATH.read_text(),
        Capabilities=["CAPABILITY_IAM"], Parameters=[{"ParameterKey": "BotRegion", "ParameterValue": "eu-west-1"}])
    inbox = eu.queue("bot-inbox")
    eu.client("events").put_rule(Name="on_dependency_change", EventPattern=json.dumps(app.DEPENDENCY_CHANGES))
    eu.client("events").put_targets(Rule="on_dependency_change", Targets=[{"Id": "inbox", "Arn": inbox}])

    change = api_call("PutRolePolicy", {"roleName": "eu-worker-role", "policyName": "writes-jobs"}, service="iam")
    sent = aws.client("events").put_events(Entries=[{"Source": change["source"], "DetailType": change["detail-type"],
                                                     "Detail": json.dumps(change["detail"])}])
    assert sent["FailedEntryCount"] == 0
    url = eu.client("sqs").get_queue_url(QueueName="bot-inbox")["QueueUrl"]
    (message,) = eu.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    forwarded = json.loads(message["Body"])
    assert forwarded["detail"]["eventName"] == "PutRolePolicy"

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    runtime = make_runtime()
    runtime.session = type(runtime.session)(region_name="eu-west-1")
    report = handle_event(forwarded, runtime=runtime)
    assert [f["policy"] for f in report["findings"]] == ["recursive-trigger"]
