"""Exact identities, not name patterns (issue 11, item 5): the packaged settings name the bot's exact roles and
functions; the member role trusts the bot's exact execution roles; sts:AssumeRole stays in the organisation and
lambda:InvokeFunction reaches only the bot's own worker. moto evaluates neither IAM conditions nor trust policies:
these tests check what the policies say, cfn-lint checks the templates (tests/cli/build/test_package.py), and the policy
grammar follows the IAM reference (global condition keys are usable as policy variables)."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.bot.runtime import Runtime
from chalicelib.killswitch import kill as killswitch
from chalicelib.policy.settings import from_json
from safetycatch.build import iam, member_template
from safetycatch.build import steps as build
from safetycatch.local.cloudtrail import api_call

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@pytest.fixture
def packaged(tmp_path):
    """The policy set as `make package STAGE=prod` compiles it into the Lambda package for this account."""
    data = build.compile_policies(target=tmp_path / "compiled.json", stage="prod", account=ACCOUNT, region=REGION)
    return from_json(data)


def _runtime_with(make_runtime, policy_set) -> Runtime:
    runtime = make_runtime()
    runtime.policy_set = policy_set
    return runtime


def test_packaged_settings_name_exact_roles_not_a_name_pattern(packaged):
    settings = packaged.settings
    assert "arn:aws:iam::*:role/safetycatch-*" not in settings.self_role_patterns
    assert settings.is_own_role(f"arn:aws:iam::{ACCOUNT}:role/safetycatch-prod-on_config_change")
    assert settings.is_own_role(f"arn:aws:iam::{ACCOUNT}:role/safetycatch-prod-slack_worker")
    assert settings.is_own_role("arn:aws:iam::210987654321:role/safetycatch-remediation"), "the member role"
    for impostor in (f"arn:aws:iam::{ACCOUNT}:role/safetycatch-evil", "arn:aws:iam::999999999999:role/safetycatch-x",
                     "arn:aws:iam::999999999999:role/safetycatch-prod-on_config_change",
                     f"arn:aws:iam::{ACCOUNT}:role/safetycatch-dev-on_config_change"):
        assert not settings.is_own_role(impostor), impostor
    assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:safetycatch-prod-slack_worker" in settings.own_functions
    assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:safetycatch-prod" in settings.own_functions


def test_a_role_named_like_the_bots_cannot_hide_its_changes(aws, make_runtime, packaged):
    """Attack: create a role ``safetycatch-evil`` and deploy Timeout 30 with it: the packaged glob
    ``arn:aws:iam::*:role/safetycatch-*`` took it for the bot's own change and skipped it."""
    runtime = _runtime_with(make_runtime, packaged)
    arn = aws.function("orders-api", timeout=30)
    aws.rest_api(arn, path="orders")
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30},
                     role="safetycatch-evil")
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and [f["outcome"] for f in report["findings"]] == ["fixed"]
    own = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 25},
                   role="safetycatch-prod-on_config_change", session="safetycatch")
    assert handle_event(own, runtime=runtime)["skipped"].startswith("the bot's own change")


def test_a_function_whose_role_is_named_like_the_bots_can_still_be_killed(aws, runtime):
    """Its role's name made a function unkillable ("one of safetycatch's own functions")."""
    role = aws.client("iam").create_role(RoleName="safetycatch-thumbnails", AssumeRolePolicyDocument=ROLE_TRUST)
    aws.client("lambda").create_function(FunctionName="thumbnailer", Runtime="python3.12", Handler="app.handler",
                                         Role=role["Role"]["Arn"], Code={"ZipFile": aws._zip})
    result = killswitch.kill(runtime, "thumbnailer", "loop", "alice")
    assert result["outcome"] == "fixed", result
    assert aws.client("lambda").get_function_concurrency(FunctionName="thumbnailer")[
        "ReservedConcurrentExecutions"] == 0


def test_the_bots_own_functions_are_never_killed_by_exact_arn(aws, make_runtime, packaged):
    runtime = _runtime_with(make_runtime, packaged)
    aws.function("safetycatch-prod-slack_worker")
    result = killswitch.kill(runtime, "safetycatch-prod-slack_worker", "loop", "alice")
    assert result["outcome"] == "exempt" and "one of safetycatch's own functions" in result["detail"]
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="safetycatch-prod-slack_worker")


def test_the_member_role_trusts_the_bots_exact_execution_roles():
    role = member_template.member_template()["Resources"]["RemediationRole"]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    condition = statement["Condition"]
    assert "ArnLike" not in condition, "no safetycatch-* pattern"
    trusted = [arn["Fn::Sub"] for arn in condition["ArnEquals"]["aws:PrincipalArn"]]
    assert trusted and all("*" not in arn for arn in trusted)
    assert "arn:${AWS::Partition}:iam::${BotAccountId}:role/safetycatch-${BotStage}-on_config_change" in trusted
    assert "arn:${AWS::Partition}:iam::${BotAccountId}:role/safetycatch-${BotStage}-slack_worker" in trusted
    assert not any(arn.endswith("-api_handler") for arn in trusted), "the HTTP-facing handler never assumes it"
    assert condition["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}


@pytest.mark.parametrize("stage", iam.stages())
def test_assume_role_stays_in_the_organisation_and_invoke_reaches_only_the_worker(stage):
    by_sid = {s["Sid"]: s for s in json.loads(iam.policy_path(stage).read_text())["Statement"]}
    assume = by_sid["AssumeMemberRoles"]
    assert assume["Action"] == ["sts:AssumeRole"]
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
    invoke = by_sid["InvokeOwnFunctions"]
    assert invoke["Action"] == ["lambda:InvokeFunction"]
    assert invoke["Resource"] == f"arn:aws:lambda:*:*:function:safetycatch-{stage}-slack_worker"
    assert invoke["Condition"] == {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}


def test_the_package_is_for_the_credentials_account_or_says_which_to_set(aws, monkeypatch):
    assert build.package_identity() == (ACCOUNT, REGION)
    monkeypatch.setenv("ACCOUNT", "210987654321")
    assert build.package_identity(region="eu-west-1") == ("210987654321", "eu-west-1")
    monkeypatch.setenv("ACCOUNT", "12")
    with pytest.raises(build.BuildError, match="ACCOUNT: expected 12 digits"):
        build.package_identity()
