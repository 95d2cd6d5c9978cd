"""Item 4 of issue 25, recursive-trigger: a mapping's ``FilterCriteria`` that no write of the function can pass
closes no loop (live on moto and before deploy), and a bucket named through a parameter that both the event and
the policy use is one bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[2]
TTL_ONLY = {"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}


def _stream_worker(aws: Any, filters: list[dict[str, Any]] | None, actions: list[str]) -> None:
    table = aws.client("dynamodb").create_table(
        TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]
    role = aws.execution_role("worker-role", {"writes": {"Statement": [{
        "Effect": "Allow", "Action": actions, "Resource": table["TableArn"]}]}})
    aws.client("lambda").create_function(FunctionName="worker", Runtime="python3.12", Role=role,
                                         Handler="app.handler", Code={"ZipFile": aws._zip})
    extra = {"FilterCriteria": {"Filters": [{"Pattern": json.dumps(f)} for f in filters]}} if filters else {}
    aws.client("lambda").create_event_source_mapping(EventSourceArn=table["LatestStreamArn"], FunctionName="worker",
                                                     StartingPosition="LATEST", **extra)


def _loops(runtime: Any) -> list[str]:
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False).to_json()
    assert report["errors"] == []
    return [f["message"] for f in report["findings"] if f["policy"] == "recursive-trigger"]


@pytest.mark.parametrize(("filters", "actions", "loops"), [
    (None, ["dynamodb:UpdateItem"], 1),
    ([TTL_ONLY], ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], 0),
    ([{"eventName": ["REMOVE"]}], ["dynamodb:UpdateItem"], 0),
    ([{"eventName": ["REMOVE"]}], ["dynamodb:DeleteItem"], 1),
    ([{"eventName": ["INSERT"]}, TTL_ONLY], ["dynamodb:PutItem"], 1),
    ([{"dynamodb": {"NewImage": {"status": {"S": ["done"]}}}}], ["dynamodb:PutItem"], 1),
])
def test_a_stream_filter_no_write_can_pass_closes_no_loop(aws, runtime, filters, actions, loops):
    _stream_worker(aws, filters, actions)
    assert len(_loops(runtime)) == loops


TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  UploadBucketName:
    Type: String
Resources:
  Uploads:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref UploadBucketName
  Thumbnailer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Policies:
        - S3CrudPolicy:
            BucketName: !Ref UploadBucketName
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      StreamSpecification: {StreamViewType: OLD_IMAGE}
  Expirer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref Table}
      Events:
        Expired:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: LATEST
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}'
"""


def _recursive(capsys: Any, path: Path) -> dict[str, Any]:
    code = main(["check", str(path), "--policies", str(ROOT / "policies"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    return {f["resource"]: f for f in json.loads(out)["findings"] if f["policy"] == "recursive-trigger"}


def test_before_deploy_a_parameter_named_bucket_and_a_ttl_filter(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    found = _recursive(capsys, path)
    assert "Thumbnailer" in found, "the event and the policy name the bucket through the same parameter"
    assert "Expirer" not in found, "only DynamoDB's TTL deletions pass the filter: no write of the function"
    path.write_text(TEMPLATE.replace("            FilterCriteria:\n              Filters:\n", "").replace(
        "                - Pattern: '{\"userIdentity\"", "#"))
    assert "Expirer" in _recursive(capsys, path)
