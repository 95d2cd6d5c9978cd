"""EC2 / IAM / S3 CloudTrail events: parsing (hostile input never raises) and the deployed rule's handler."""

from __future__ import annotations

import pytest
from chalice.test import Client

import app
from chalicelib.bot import handlers
from chalicelib.intake.events import Change, Skip, parse
from chalicelib.policy.settings import Settings


@pytest.mark.parametrize("name, lookup, functions", [
    ("ec2-CreateRoute", ("route-table", "rtb-0a9d8c7b6e5f4a321"), 0),
    ("ec2-DeleteNatGateway", ("nat-gateway", "nat-05e1c3a7b9d2f4860"), 0),
    ("iam-PutRolePolicy", ("role", "example-fn-role"), 0),
    ("s3-PutBucketNotification", (), 1),
])
def test_recorded_fixtures_parse(event, name, lookup, functions):
    change = parse(event(name), Settings())
    assert isinstance(change, Change)
    assert change.lookup == lookup and len(change.functions) == functions
    assert change.policies in (("vpc-no-egress",), ("recursive-trigger",))


@pytest.mark.parametrize("name, path, value", [
    ("ec2-CreateRoute", ("requestParameters",), None),
    ("ec2-CreateRoute", ("requestParameters", "routeTableId"), ["rtb-1"]),
    ("ec2-CreateRoute", ("requestParameters", "routeTableId"), "rtb-../../etc"),
    ("ec2-DeleteNatGateway", ("requestParameters", "DeleteNatGatewayRequest"), "nat-0"),
    ("iam-PutRolePolicy", ("requestParameters", "roleName"), 42),
    ("iam-PutRolePolicy", ("requestParameters", "roleName"), "a role with spaces"),
    ("s3-PutBucketNotification", ("requestParameters", "NotificationConfiguration"), ["x"]),
    ("s3-PutBucketNotification", ("requestParameters", "NotificationConfiguration", "CloudFunctionConfiguration"),
     [None, 3, {"CloudFunction": {"nested": True}}]),
    ("s3-PutBucketNotification", ("requestParameters", "NotificationConfiguration", "CloudFunctionConfiguration",
                                  "CloudFunction"), "arn:aws:lambda:us-east-1:123456789012:function:bad name"),
])
def test_hostile_payloads_are_skipped(event, name, path, value):
    recorded = event(name)
    target = recorded["detail"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert isinstance(parse(recorded, Settings()), Skip)


def test_the_dependency_rule_invokes_the_same_handler(aws, runtime, event):
    handlers.reset_runtime(runtime)
    branches = {b["source"][0]: b["detail"]["eventName"] for b in app.DEPENDENCY_CHANGES["$or"]}
    assert "aws.iam" in branches and "CreateRoute" in branches["aws.ec2"]
    with Client(app.app) as client:
        response = client.lambda_.invoke("on_dependency_change", event("iam-PutRolePolicy"))
    assert response.payload["skipped"] == "no function is affected by this change"
    assert response.payload["event_name"] == "PutRolePolicy" and response.payload["functions"] == []
