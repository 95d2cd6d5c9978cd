"""An organization of accounts on moto's multi-account support: events and sweeps in member accounts go
through the member's remediation role; one scan covers many accounts and regions."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.credentials import AssumeRoleCredentialFetcher
from botocore.exceptions import ClientError

from chalicelib.bot.handlers import handle_event
from chalicelib.org import accounts
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.sandbox import SandboxAccount, member_sandbox
from safetycatch.main import main

MEMBER = "111111111111"
OTHER = "222222222222"


def member_account(account: str = MEMBER, region: str = "us-east-1") -> SandboxAccount:
    """A sandbox in another account: moto maps an assumed role's credentials to the role's account."""
    return member_sandbox(account, region)


def _orders_api(sandbox: SandboxAccount, timeout: int = 30) -> str:
    arn = sandbox.function("example-fn", timeout=timeout)
    sandbox.rest_api(arn, path="orders")
    return arn


def test_member_session_acts_in_the_member_account_with_the_external_id(aws, monkeypatch):
    seen = {}
    original = AssumeRoleCredentialFetcher.__init__

    def spy(self, client_creator, source_credentials, role_arn, extra_args=None, **kwargs):
        seen.update(role_arn=role_arn, **(extra_args or {}))
        original(self, client_creator, source_credentials, role_arn, extra_args=extra_args, **kwargs)

    monkeypatch.setattr(AssumeRoleCredentialFetcher, "__init__", spy)
    member_account().function("member-fn")
    session = accounts.assumed_session(boto3.session.Session(region_name="us-east-1"), MEMBER,
                                       "safetycatch-remediation", external_id="safetycatch-prod")
    assert session.client("sts").get_caller_identity()["Account"] == MEMBER
    assert [f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"]] == ["member-fn"]
    assert seen == {"role_arn": f"arn:aws:iam::{MEMBER}:role/safetycatch-remediation",
                    "RoleSessionName": "safetycatch", "ExternalId": "safetycatch-prod"}
    assert aws.client("lambda").list_functions()["Functions"] == [], "the bot's own account is untouched"


def test_event_from_a_member_account_is_fixed_there_through_the_role(aws, runtime, calls):
    member = member_account()
    _orders_api(member, timeout=30)
    own = _orders_api(aws, timeout=30)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "example-fn", "timeout": 30},
                     account=MEMBER)
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and report["function"] == f"arn:aws:lambda:us-east-1:{MEMBER}:function:example-fn"
    (finding,) = report["findings"]
    assert (finding["policy"], finding["outcome"]) == ("apigw-timeout", "fixed")
    assert member.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25
    assert aws.client("lambda").get_function(FunctionName=own)["Configuration"]["Timeout"] == 30
    assert runtime.store.get_fix(finding["fix_id"])["spec"]["prior"] == {"Timeout": 30}, "state stays in the bot"


def test_member_account_without_the_role_is_skipped_not_raised(aws, runtime, monkeypatch):
    def denied(self):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    monkeypatch.setattr(AssumeRoleCredentialFetcher, "fetch_credentials", denied)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "example-fn"}, account=OTHER)
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] == f"cannot assume safetycatch-remediation in account {OTHER} (AccessDenied)"
    assert report["findings"] == []


def test_scan_many_accounts_and_regions_is_one_report(aws, capsys):
    _orders_api(aws, timeout=30)
    _orders_api(member_account(MEMBER, "eu-west-1"), timeout=28)
    member_account(OTHER).function("quiet-fn")
    code = main(["scan", "--accounts", f"123456789012,{MEMBER},{OTHER}", "--regions", "us-east-1,eu-west-1",
                 "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {k for k in data} >= {"account", "region", "functions_scanned", "findings", "errors", "scopes"}
    assert (data["account"], data["region"]) == (None, None)  # several scopes: `scopes` names them
    assert [(s["account"], s["region"]) for s in data["scopes"]] == [
        (a, r) for a in ("123456789012", MEMBER, OTHER) for r in ("us-east-1", "eu-west-1")]
    assert data["functions_scanned"] == 3 and data["errors"] == []
    timeouts = sorted((f["account"], f["region"], f["function"]) for f in data["findings"]
                      if f["policy"] == "apigw-timeout")
    assert timeouts == [("111111111111", "eu-west-1", "arn:aws:lambda:eu-west-1:111111111111:function:example-fn"),
                        ("123456789012", "us-east-1", "arn:aws:lambda:us-east-1:123456789012:function:example-fn")]
    assert {f["outcome"] for f in data["findings"]} == {"reported"}


def test_scan_all_accounts_lists_the_organization(aws, capsys):
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    created = org.create_account(AccountName="payments", Email="payments@example.com")["CreateAccountStatus"]
    member_account(created["AccountId"]).function("payments-fn")
    code = main(["scan", "--all-accounts", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert sorted(s["account"] for s in data["scopes"]) == sorted(["123456789012", created["AccountId"]])
    assert data["functions_scanned"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--accounts", "12345"], "--accounts: expected 12-digit account ids"),
    (["--regions", "mars-1"], "--regions: expected region names"),
])
def test_scan_scope_flags_reject_bad_input(aws, capsys, argv, message):
    assert main(["scan", *argv]) == 2
    assert message in capsys.readouterr().err


def test_member_template_forwards_a_change_to_the_bot_which_fixes_it_there(aws, runtime):
    """The StackSet template deployed on moto in a member account: its rule puts a CloudTrail change on the
    bot account's bus, where the bot's own rule (app.py's pattern) picks it up; the fix lands in the member."""
    import app
    from safetycatch.build.member_template import PATH as MEMBER_TEMPLATE

    member = member_account()
    member.client("cloudformation").create_stack(
        StackName="safetycatch-member", TemplateBody=MEMBER_TEMPLATE.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": "BotAccountId", "ParameterValue": "123456789012"},
                    {"ParameterKey": "ExternalId", "ParameterValue": "safetycatch-dev"}])
    role = member.client("iam").get_role(RoleName="safetycatch-remediation")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"] == {
        "sts:ExternalId": "safetycatch-dev"}
    queue = aws.queue("bot-inbox")
    bot_bus = aws.client("events")
    bot_bus.put_rule(Name="on_config_change", EventPattern=json.dumps(app.CONFIG_CHANGES))
    bot_bus.put_targets(Rule="on_config_change", Targets=[{"Id": "inbox", "Arn": queue}])

    _orders_api(member, timeout=30)
    change = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "example-fn", "timeout": 30},
                      account=MEMBER)
    sent = member.client("events").put_events(Entries=[{
        "Source": change["source"], "DetailType": change["detail-type"], "Detail": json.dumps(change["detail"])}])
    assert sent["FailedEntryCount"] == 0
    url = aws.client("sqs").get_queue_url(QueueName="bot-inbox")["QueueUrl"]
    (message,) = aws.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    forwarded = json.loads(message["Body"])
    assert forwarded["detail"]["recipientAccountId"] == MEMBER

    report = handle_event(forwarded, runtime=runtime)
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]
    assert member.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


def test_member_sessions_share_one_sts_client_per_source(aws, monkeypatch):
    """Issue 27, item 8: what repeats per account in an organisation sweep. botocore asks the fetcher for an STS
    client at each member's first call; one base session builds it once for all members (counted, not timed)."""
    base = boto3.session.Session(region_name="us-east-1")
    built: list[str] = []
    original = boto3.session.Session.client

    def counting(self, service, *args, **kwargs):
        if self is base:
            built.append(service)
        return original(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "client", counting)
    members = [f"{n:012d}" for n in range(210000000001, 210000000006)]
    identities = [accounts.assumed_session(base, account, "safetycatch-remediation").client("sts")
                  .get_caller_identity()["Account"] for account in members]
    assert identities == members  # each acts in its own account
    assert built == ["sts"]
