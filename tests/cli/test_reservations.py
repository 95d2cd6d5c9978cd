"""The bot's own reserved concurrency fits the account: doctor reads GetAccountSettings (moto lacks it: stubbed
with botocore's Stubber, that operation only) and says before a deploy whether Lambda would accept the stack's
reservations (it keeps at least 100 executions unreserved)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import yaml

from safetycatch import doctor


def _settings(limit: int, unreserved: int) -> dict[str, Any]:
    return {"AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved,
                             "TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}}


def _check(aws: Any, stub_only: Any, limit: int, unreserved: int) -> doctor.Item:
    checker = doctor.Checker(boto3.session.Session(region_name="us-east-1"), doctor.Target.for_stage("dev"))
    stub_only(checker.client("lambda"), "GetAccountSettings").add_response(
        "get_account_settings", _settings(limit, unreserved), {})
    return checker.guarded("reservations", lambda: doctor.check_reservations(checker))


def test_the_stack_reserves_76_executions_by_function():
    reserved = doctor.bot_reservations()
    assert sum(reserved.values()) == 76
    assert reserved["api_handler"] == 5 and reserved["sweep_worker"] == 10 and reserved["slack_worker"] == 10


@pytest.mark.parametrize(("limit", "unreserved", "status", "left"), [
    (1000, 1000, "ok", 924),    # the default account: plenty
    (176, 176, "ok", 100),      # exactly the floor left
    (175, 175, "missing", 99),  # one short: Lambda would refuse the deploy
    (10, 10, "missing", -66),   # a new account with reduced quotas: no reservation fits
])
def test_doctor_says_before_deploy_whether_the_reservations_fit(aws, stub_only, limit, unreserved, status, left):
    item = _check(aws, stub_only, limit, unreserved)
    assert item.status == status, item
    assert (f"the stack reserves 76 concurrent executions (.chalice/config.json); the account's limit is {limit}"
            in item.detail)
    if status == "ok":
        assert item.detail.endswith(f"{left} stay unreserved")
    else:
        assert f"only {left} would stay unreserved, Lambda needs 100" in item.detail
        assert "L-B99A9384" in item.fix and f"at least {76 + 100}" in item.fix
        assert "make deploy RESERVED=n API_RESERVED=n SWEEP_RESERVED=n" in item.fix


def test_a_deployed_bot_counts_its_own_reservations_once(aws, stub_only):
    """Once deployed, the bot's own reservations are already out of the unreserved pool: not counted twice."""
    arn = aws.function("safetycatch-dev")  # the API handler, as the package names it
    aws.client("lambda").put_function_concurrency(FunctionName=arn, ReservedConcurrentExecutions=5)
    item = _check(aws, stub_only, 176, 171)
    assert item.status == "ok" and "(5 of them reserved by the bot already)" in item.detail


def _stack(aws: Any, **parameters: int) -> None:
    """The deployed stack as CloudFormation reports it: the reservation parameters with their values (moto keeps
    a stack's parameters; one placeholder resource stands for the rest)."""
    template = {"Parameters": {name: {"Type": "Number", "Default": 1} for name in parameters},
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}}
    aws.client("cloudformation").create_stack(
        StackName="safetycatch-dev", TemplateBody=yaml.safe_dump(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()])


def test_doctor_reads_the_reservations_from_the_deployed_stack(aws, stub_only):
    """Deployed with smaller reservations (make deploy RESERVED=2 API_RESERVED=2 SWEEP_RESERVED=2), the stack
    reserves 6 handlers x 2 + the sweep worker's 2 + the API's 2 + 1 = 17 (the dead-letter notifier keeps its own
    slot): what a redeploy keeps, so an account of 117 fits where the config's 76 would not."""
    _stack(aws, ReservedConcurrency=2, ApiHandlerReservedConcurrency=2, SweepWorkerReservedConcurrency=2)
    item = _check(aws, stub_only, 117, 117)
    assert item.status == "ok", item
    assert item.detail.startswith("the stack reserves 17 concurrent executions (stack safetycatch-dev's parameters)")
    assert item.detail.endswith("100 stay unreserved")
    assert _check(aws, stub_only, 116, 116).status == "missing"


def test_a_stack_without_the_parameters_falls_back_to_the_config(aws, stub_only):
    _stack(aws, Unrelated=3)
    item = _check(aws, stub_only, 1000, 1000)
    assert "the stack reserves 76 concurrent executions (.chalice/config.json)" in item.detail
