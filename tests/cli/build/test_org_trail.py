"""The organisation trail as CloudTrail owns it (issue 23.2): a trail a delegated administrator creates is owned by
the management account - its ARN carries that account's id - so the trail bucket's policy names the management
account in ``aws:SourceArn`` and in the ``AWSLogs/<account>/`` path (``ManagementAccountId``). moto's
CloudFormation does not implement AWS::S3::BucketPolicy, so the policy is resolved from deploy/resources.yaml by
the intrinsic functions as CloudFormation documents them (``Resolver``); cfn-lint checks the whole template
(tests/cli/build/test_package.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "resources.yaml"
BOT, MANAGEMENT, ORG = "123456789012", "111111111111", "o-abcdefghij"


class Resolver:
    """CloudFormation's intrinsic functions for the few the trail's resources use (Ref, Fn::Sub in both forms,
    Fn::If, Fn::Equals, Fn::Not, Fn::GetAtt of the bucket's Arn), as the CloudFormation user guide defines them:
    moto's CloudFormation does not implement AWS::S3::BucketPolicy, so the policy is resolved here instead."""

    def __init__(self, template: dict, parameters: dict[str, str]) -> None:
        defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.refs = {**defaults, **parameters, "AWS::AccountId": BOT, "AWS::Region": "us-east-1",
                     "AWS::Partition": "aws", "TrailBucket": "safetycatch-prod-trailbucket-x1"}
        self.conditions = {name: self(body) for name, body in template["Conditions"].items()}

    def __call__(self, node: object) -> object:
        if isinstance(node, list):
            return [self(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            return {k: self(v) for k, v in node.items()}
        (key, value), = node.items()
        if key == "Ref":
            return self.refs[value]
        if key == "Condition":
            return self.conditions[value]
        if key == "Fn::GetAtt":
            assert value[0] == "TrailBucket" and value[1] == "Arn"
            return f"arn:aws:s3:::{self.refs['TrailBucket']}"
        if key == "Fn::Equals":
            return self(value[0]) == self(value[1])
        if key == "Fn::Not":
            return not self(value[0])
        if key == "Fn::If":
            return self(value[1] if self.conditions[value[0]] else value[2])
        if key == "Fn::Sub":
            text, names = (value, {}) if isinstance(value, str) else (value[0], {
                k: self(v) for k, v in value[1].items()})
            return re.sub(r"\$\{([\w:.]+)\}", lambda m: str(names.get(m[1]) or (
                self({"Fn::GetAtt": m[1].split(".")}) if "." in m[1] else self.refs[m[1]])), text)
        raise AssertionError(f"unexpected intrinsic {key}")


def _bucket_policy(**parameters: str) -> dict:
    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems
    resolve = Resolver(template, {"Stage": "prod", **parameters})
    assert resolve.conditions["CreateTrail"]
    return resolve(template["Resources"]["TrailBucketPolicy"]["Properties"]["PolicyDocument"])  # type: ignore[return-value]


def _statements(policy: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.mark.parametrize(("parameters", "owner", "paths"), [
    ({"TrailMode": "account"}, BOT, [f"AWSLogs/{BOT}/*"]),
    ({"TrailMode": "organization", "OrganizationId": ORG}, BOT, [f"AWSLogs/{BOT}/*", f"AWSLogs/{ORG}/*"]),
    ({"TrailMode": "organization", "OrganizationId": ORG, "ManagementAccountId": MANAGEMENT}, MANAGEMENT,
     [f"AWSLogs/{MANAGEMENT}/*", f"AWSLogs/{ORG}/*"]),
])
def test_the_bucket_policy_names_the_trails_owner(parameters, owner, paths):
    statements = _statements(_bucket_policy(**parameters))
    arn = f"arn:aws:cloudtrail:us-east-1:{owner}:trail/safetycatch-prod"
    for sid in ("CloudTrailAclCheck", "CloudTrailWrite"):
        assert statements[sid]["Condition"]["StringEquals"]["aws:SourceArn"] == arn, sid
    resources = statements["CloudTrailWrite"]["Resource"]
    resources = resources if isinstance(resources, list) else [resources]
    assert [r.split(":::", 1)[1].split("/", 1)[1] for r in resources] == paths
