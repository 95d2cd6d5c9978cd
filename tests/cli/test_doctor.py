"""``safetycatch doctor`` on moto: after ``init`` and a deploy-like set-up every item is present (the layer, which
moto cannot answer, is "cannot check here"); each piece removed on its own makes exactly its own line fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from chalicelib.core.aws import RETRY_CONFIG
from safetycatch import doctor
from safetycatch.build import member_template
from safetycatch.local.sandbox import SandboxAccount
from safetycatch.local.slack_local import LocalSlack
from safetycatch.main import main
from tests.world import iam_authorization as authz

ACCOUNT = "123456789012"
REGION = "eu-west-1"  # not us-east-1: the IAM forwarding rule is needed
TOKEN = "xoxb-doctor-test-token"
BOT_ITEMS = ["cloudtrail", *(f"rule:{h}" for h in doctor.bot_rules()), "rule:scheduled_sweep", "iam-forwarding",
             "state-table", "mode-parameter", "slack-secret", "slack-auth", "layer", "reservations",
             "encrypted-environments", "last-event"]


@dataclass
class Deployed:
    """The deploy-like set-up: what each removal below takes away."""

    eu: SandboxAccount
    us: SandboxAccount
    slack: LocalSlack
    trail: str
    rules: dict[str, str]  # handler -> rule name


def _function_and_rule(eu: SandboxAccount, handler: str, pattern: dict | None, schedule: str | None) -> str:
    arn = eu.function(f"safetycatch-dev-{handler}")
    rule = f"safetycatch-dev-{handler}-event"
    events = eu.client("events")
    events.put_rule(Name=rule, **({"ScheduleExpression": schedule} if schedule else
                                  {"EventPattern": json.dumps(pattern)}))
    events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arn}])
    return rule


@pytest.fixture
def deployed(aws, monkeypatch) -> Iterator[Deployed]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("SAFETYCATCH_TABLE", "safetycatch-dev")
    eu, us = SandboxAccount(region=REGION), SandboxAccount(region="us-east-1")
    assert main(["init"]) == 0
    eu.client("ssm").put_parameter(Name="/safetycatch/dev/mode", Value="enforce", Type="String")
    eu.client("secretsmanager").create_secret(Name="safetycatch/dev/slack", SecretString=json.dumps(
        {"bot_token": TOKEN, "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}))
    us.client("s3").create_bucket(Bucket="org-trail-logs")
    trail = us.client("cloudtrail").create_trail(Name="org-trail", S3BucketName="org-trail-logs",
                                                 IsMultiRegionTrail=True)["Name"]
    us.client("cloudtrail").start_logging(Name=trail)
    rules = {handler: _function_and_rule(eu, handler, pattern, None) for handler, pattern in doctor.bot_rules().items()}
    rules[doctor.SWEEP[0]] = _function_and_rule(eu, doctor.SWEEP[0], None, doctor.SWEEP[1])
    us.client("cloudformation").create_stack(
        StackName="safetycatch-dev-iam-events", TemplateBody=member_template.IAM_FORWARDER_PATH.read_text(),
        Capabilities=["CAPABILITY_IAM"], Parameters=[{"ParameterKey": "BotRegion", "ParameterValue": REGION}])
    with LocalSlack(token=TOKEN) as slack:
        monkeypatch.setenv("SAFETYCATCH_SLACK_API_URL", slack.url)
        yield Deployed(eu, us, slack, trail, rules)


def _doctor(capsys, *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = main(["doctor", "--format", "json", *argv])
    checks = json.loads(capsys.readouterr().out)["checks"]
    assert all(set(c) == {"id", "status", "detail", "fix"} for c in checks), "the JSON contract"
    return code, {c["id"]: c for c in checks}


def test_everything_a_deployed_bot_needs_is_present(deployed, capsys):
    code, checks = _doctor(capsys)
    assert list(checks) == BOT_ITEMS
    assert {i: c["status"] for i, c in checks.items() if c["status"] != "ok"} == {
        "layer": "cannot-check", "reservations": "cannot-check",  # moto lacks GetAccountSettings
        "last-event": "cannot-check"}, checks  # a fresh deployment: no event heard yet
    assert code == 0, "cannot-check is listed, not failed"
    assert checks["cloudtrail"]["detail"] == "account trail org-trail logs management write events in eu-west-1"
    assert checks["slack-auth"]["detail"] == "auth.test ok: safetycatch in safetycatch-local"
    assert TOKEN not in json.dumps(checks), "the token is never printed"
    assert checks["layer"]["detail"].startswith("the published Powertools layer mapping")
    assert deployed.slack.calls("auth.test")


def _disable(rule: str, region: str = REGION) -> Callable[[Deployed], None]:
    return lambda d: boto3.client("events", region_name=region).disable_rule(Name=rule)


def _delete_rule(handler: str) -> Callable[[Deployed], None]:
    def remove(d: Deployed) -> None:
        events = d.eu.client("events")
        events.remove_targets(Rule=d.rules[handler], Ids=["1"])
        events.delete_rule(Name=d.rules[handler])
    return remove


def _forwarder_rule(d: Deployed) -> str:
    events = d.us.client("events")
    (name,) = [r["Name"] for r in events.list_rules()["Rules"] if "ForwardIamChanges" in r["Name"]]
    return name


REMOVALS: dict[str, Callable[[Deployed], None]] = {
    "cloudtrail": lambda d: d.us.client("cloudtrail").stop_logging(Name=d.trail),
    "rule:on_config_change": _delete_rule("on_config_change"),
    "rule:on_dependency_change": lambda d: d.eu.client("events").put_rule(
        Name=d.rules["on_dependency_change"], EventPattern=json.dumps(
            {"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"]})),  # an older version's pattern
    "rule:on_runaway_alarm": _delete_rule("on_runaway_alarm"),
    "rule:on_lambda_health": lambda d: d.eu.client("events").disable_rule(Name=d.rules["on_lambda_health"]),
    "rule:scheduled_sweep": lambda d: d.eu.client("events").disable_rule(Name=d.rules["scheduled_sweep"]),
    "iam-forwarding": lambda d: d.us.client("events").disable_rule(Name=_forwarder_rule(d)),
    "state-table": lambda d: d.eu.client("dynamodb").delete_table(TableName="safetycatch-dev"),
    "mode-parameter": lambda d: d.eu.client("ssm").put_parameter(Name="/safetycatch/dev/mode", Value="enfroce",
                                                                  Type="String", Overwrite=True),
    "slack-secret": lambda d: d.eu.client("secretsmanager").delete_secret(SecretId="safetycatch/dev/slack",
                                                                          ForceDeleteWithoutRecovery=True),
    "slack-auth": lambda d: d.eu.client("secretsmanager").put_secret_value(
        SecretId="safetycatch/dev/slack", SecretString=json.dumps({"bot_token": "xoxb-revoked",
                                                                   "signing_secret": "8f742231b10e8888"})),
}
# What another line cannot tell once this piece is gone (never "missing" for it, never "ok" either).
CANNOT_TELL = {"slack-secret": {"slack-auth"}}


@pytest.mark.parametrize("piece", list(REMOVALS))
def test_each_missing_piece_fails_exactly_its_own_line(deployed, capsys, piece):
    REMOVALS[piece](deployed)
    code, checks = _doctor(capsys)
    assert code == 1
    assert [i for i, c in checks.items() if c["status"] == "missing"] == [piece], checks
    assert checks[piece]["fix"], "a missing item says how to fix it"
    unsure = {i for i, c in checks.items() if c["status"] == "cannot-check"} - {"layer", "reservations", "last-event"}
    assert unsure == CANNOT_TELL.get(piece, set())


def test_the_table_is_one_line_per_item_with_the_fix(deployed, capsys):
    deployed.eu.client("dynamodb").delete_table(TableName="safetycatch-dev")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if "state-table" in x]
    assert line.startswith("MISSING") and "table safetycatch-dev not found in eu-west-1" in line
    assert ("→ fix: SAFETYCATCH_TABLE=safetycatch-dev AWS_DEFAULT_REGION=eu-west-1 safetycatch init (local runs), "
            "or deploy the bot: make deploy STAGE=dev") in line
    assert "cannot check here" in out and out.rstrip().endswith("1 missing, 2 cannot be checked here")


def test_no_trail_at_all_is_missing_with_the_prerequisite(aws, monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code, checks = _doctor(capsys)
    assert code == 1 and checks["cloudtrail"]["status"] == "missing"
    assert checks["cloudtrail"]["detail"].startswith("no trail covers eu-west-1: EventBridge gets no CloudTrail")
    assert "TrailMode=organization" in checks["cloudtrail"]["fix"]


def test_a_trail_logging_only_reads_does_not_count(deployed, capsys):
    deployed.us.client("cloudtrail").put_event_selectors(TrailName=deployed.trail, EventSelectors=[
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}])
    _, checks = _doctor(capsys)
    assert checks["cloudtrail"]["status"] == "missing"
    assert "org-trail does not log management write events" in checks["cloudtrail"]["detail"]


def test_usage_errors_exit_2(aws, capsys):
    assert main(["doctor", "--stage", "qa"]) == 2
    assert capsys.readouterr().err.strip() == ("safetycatch: doctor: no stage 'qa' in .chalice/config.json "
                                               "(stages: dev, prod)")


def test_no_credentials_exit_2(monkeypatch, capsys):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err.startswith("safetycatch: no AWS credentials found")


# -- member accounts ------------------------------------------------------------------------------------------


def _member(account: str) -> SandboxAccount:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="setup")["Credentials"]
    session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], region_name=REGION,
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"])
    return SandboxAccount(region=REGION, session=session)


@pytest.fixture
def organization(deployed) -> tuple[str, SandboxAccount]:
    orgs = boto3.client("organizations", region_name="us-east-1", config=RETRY_CONFIG)
    orgs.create_organization(FeatureSet="ALL")
    account = orgs.create_account(AccountName="shop", Email="shop@example.com")["CreateAccountStatus"]["AccountId"]
    member = _member(account)
    member.client("cloudformation").create_stack(
        StackName="safetycatch-member", TemplateBody=member_template.PATH.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "BotAccountId", "ParameterValue": ACCOUNT},
                    {"ParameterKey": "BotRegion", "ParameterValue": REGION},
                    {"ParameterKey": "ExternalId", "ParameterValue": "safetycatch-dev"},
                    {"ParameterKey": "BotStage", "ParameterValue": "dev"},
                    {"ParameterKey": "RoleRegion", "ParameterValue": REGION}])  # this region's instance makes the role
    return account, member


def test_member_accounts_role_and_forwarding_rules(organization, capsys, monkeypatch):
    account, member = organization
    recorder = authz.Recorder.install(monkeypatch, ACCOUNT)
    recorder.on = True
    code, checks = _doctor(capsys, "--all-accounts")
    recorder.on = False
    assert code == 0
    member_calls = [c for c in recorder.calls if c.identity == "member"]
    assert {c.operation for c in member_calls} == {"GetRole", "ListRuleNamesByTarget", "DescribeRule",
                                                   "GetQueueUrl", "GetQueueAttributes"}
    assert authz.unauthorised(member_calls, {"member": authz.member_policy_file()}) == [], \
        "the remediation role allows what doctor reads through it"
    member_ids = [f"member-role:{account}", f"member-rules:{account}", f"member-dead-letters:{account}"]
    assert list(checks)[-3:] == member_ids and all(checks[i]["status"] == "ok" for i in member_ids)

    rule = next(r["Name"] for r in member.client("events").list_rules()["Rules"] if "ForwardConfigChanges" in r["Name"])
    member.client("events").disable_rule(Name=rule)
    code, checks = _doctor(capsys, "--all-accounts")
    assert code == 1 and [i for i, c in checks.items() if c["status"] == "missing"] == [f"member-rules:{account}"]
    assert "does not forward ForwardConfigChanges" in checks[f"member-rules:{account}"]["detail"]


def test_a_member_without_the_role_fails_its_role_line(organization, capsys):
    account, member = organization
    iam = member.client("iam")
    for name in iam.list_role_policies(RoleName="safetycatch-remediation")["PolicyNames"]:
        iam.delete_role_policy(RoleName="safetycatch-remediation", PolicyName=name)
    iam.delete_role(RoleName="safetycatch-remediation")
    code, checks = _doctor(capsys, "--all-accounts")
    assert code == 1 and [i for i, c in checks.items() if c["status"] == "missing"] == [f"member-role:{account}"]
    assert checks[f"member-rules:{account}"]["status"] == "cannot-check"
    assert checks[f"member-dead-letters:{account}"]["status"] == "cannot-check"


def test_events_a_member_could_not_forward_fail_its_dead_letters_line(organization, capsys):
    """EventBridge puts what it cannot deliver to the bot's bus (after an hour of retries) in the member's queue,
    the event as the body and why in message attributes: doctor counts them and says how to find out why."""
    account, member = organization
    sqs = member.client("sqs")
    url = sqs.get_queue_url(QueueName="safetycatch-dev-forward-dead-letters")["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail-type": "AWS API Call via CloudTrail"}),
                         MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "NO_PERMISSIONS"}})
    code, checks = _doctor(capsys, "--all-accounts")
    line = checks[f"member-dead-letters:{account}"]
    assert code == 1 and [i for i, c in checks.items() if c["status"] == "missing"] == [line["id"]]
    assert line["detail"].startswith(f"2 event(s) {account} could not forward") and url in line["fix"]

    sqs.delete_queue(QueueUrl=url)  # a member stack from before the queue (or the queue deleted by hand)
    code, checks = _doctor(capsys, "--all-accounts")
    assert code == 1 and "safetycatch-dev-forward-dead-letters absent" in checks[f"member-dead-letters:{account}"][
        "detail"]
