"""The member stack in every region (issue 23.1): IAM names are per account, so only the stack instance in one
region (``RoleRegion``, default us-east-1, where the StackSet is deployed anyway for IAM's events) creates the
remediation role; every region's instance gets its own forwarding rules and dead-letter queue. Deployed on moto's
CloudFormation in two regions of one account, as a StackSet's instances are."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from safetycatch.build.member_template import MEMBER_DEAD_LETTERS_NAME, PATH, forwarding_rules

PARAMETERS = {"BotAccountId": "111111111111", "ExternalId": "safetycatch-prod", "BotStage": "prod",
              "BotRegion": "eu-west-1"}


def _deploy(region: str, **extra: str) -> dict:
    cloudformation = boto3.client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName="StackSet-safetycatch-member-0f3b", TemplateBody=PATH.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {**PARAMETERS, **extra}.items()])
    return cloudformation.describe_stacks(StackName="StackSet-safetycatch-member-0f3b")["Stacks"][0]


def _forwarding(region: str) -> set[str]:
    rules = boto3.client("events", region_name=region).list_rules()["Rules"]
    return {r["Name"] for r in rules}


@pytest.mark.parametrize("role_region", [None, "eu-west-1"])
def test_member_stack_deploys_in_two_regions_of_one_account(role_region):
    extra = {"RoleRegion": role_region} if role_region else {}
    home = role_region or "us-east-1"
    with mock_aws():
        stacks = {region: _deploy(region, **extra) for region in ("us-east-1", "eu-west-1")}
        assert {r: s["StackStatus"] for r, s in stacks.items()} == {"us-east-1": "CREATE_COMPLETE",
                                                                    "eu-west-1": "CREATE_COMPLETE"}
        roles = [r for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"] == "safetycatch-remediation"]
        assert len(roles) == 1
        outputs = {r: {o["OutputKey"] for o in s.get("Outputs", [])} for r, s in stacks.items()}
        assert outputs[home] == {"RemediationRoleArn"} and all(not v for r, v in outputs.items() if r != home)
        for region in ("us-east-1", "eu-west-1"):
            assert len(_forwarding(region)) == len(forwarding_rules()), region  # each region forwards its events
            sqs = boto3.client("sqs", region_name=region)
            assert sqs.get_queue_url(QueueName=MEMBER_DEAD_LETTERS_NAME.format(stage="prod"))["QueueUrl"]
