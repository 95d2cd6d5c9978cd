"""Item 4 of issue 25: ``check`` sees every API and binding a template can express (CDK's ``Fn::Join`` URIs,
OpenAPI ``DefinitionBody`` / ``Body`` integrations, ``Fn::Sub`` with a variable map), as the deployed bot does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]

CDK = {
    "Resources": {
        "OrdersHandler5A3C1D2B": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "index.handler", "Timeout": 60, "MemorySize": 1024,
            "Code": {"ZipFile": "def handler(e, c): return {}"},
            "Role": {"Fn::GetAtt": ["OrdersHandlerServiceRole", "Arn"]}}},
        "OrdersHandlerServiceRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "OrdersApiC8B3B9A1": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "OrdersApi"}},
        "OrdersApiordersPOST6A1F2E3D": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "HttpMethod": "POST", "RestApiId": {"Ref": "OrdersApiC8B3B9A1"}, "ResourceId": "x",
            "AuthorizationType": "NONE",
            "Integration": {"Type": "AWS", "IntegrationHttpMethod": "POST",
                            "IntegrationResponses": [{"StatusCode": "200"}],
                            "Uri": {"Fn::Join": ["", [
                                "arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
                                ":lambda:path/2015-03-31/functions/",
                                {"Fn::GetAtt": ["OrdersHandler5A3C1D2B", "Arn"]}, "/invocations"]]}}}},
    }
}

OPENAPI = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Timeout: 15
      MemorySize: 1024
  Legacy:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Timeout: 10
      MemorySize: 1024
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Timeout: 30
      MemorySize: 1024
  OrdersApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionBody:
        openapi: 3.0.1
        paths:
          /orders:
            post:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                timeoutInMillis: 10000
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Orders.Arn}/invocations
  LegacyApi:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Body:
        swagger: '2.0'
        paths:
          /legacy:
            get:
              x-amazon-apigateway-integration:
                type: aws
                httpMethod: POST
                uri: !Sub
                  - arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn}/invocations
                  - Fn: !GetAtt Legacy.Arn
                responses:
                  default: {statusCode: '200'}
                  'BadRequest.*': {statusCode: '400'}
  WebApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      DefinitionBody:
        openapi: 3.0.1
        paths:
          /web:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                payloadFormatVersion: '2.0'
                uri: !GetAtt Web.Arn
"""


def _check(capsys: Any, path: Path) -> dict[str, Any]:
    code = main(["check", str(path), "--policies", str(ROOT / "policies"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    return dict(json.loads(out))


def _by(report: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]: f for f in report["findings"] if f["policy"] == policy}


def test_a_cdk_rest_method_built_with_fn_join_is_seen(capsys, tmp_path):
    path = tmp_path / "OrdersStack.template.json"
    path.write_text(json.dumps(CDK, indent=1))
    report = _check(capsys, path)
    assert _by(report, "apigw-timeout")["OrdersHandler5A3C1D2B"]["fix"]["value"] == 25
    assert "OrdersHandler5A3C1D2B" in _by(report, "sync-error-status")


def test_openapi_integrations_are_seen_with_their_own_timeouts_and_responses(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(OPENAPI)
    report = _check(capsys, path)
    timeouts = _by(report, "apigw-timeout")
    assert "10s integration timeout of REST API OrdersApi (POST /orders)" in timeouts["Orders"]["message"]
    assert "Legacy" not in timeouts  # Timeout 10 s under the 29 s default
    assert "Legacy" in _by(report, "sync-error-status")
    assert "Web" in timeouts and "30s integration timeout of HTTP API WebApi (GET /web)" in timeouts["Web"]["message"]


def test_an_openapi_error_pattern_that_catches_everything_is_not_flagged(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(OPENAPI.replace("'BadRequest.*': {statusCode: '400'}", "'.+': {statusCode: '500'}"))
    assert "Legacy" not in _by(_check(capsys, path), "sync-error-status")


ENV = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  DbPassword:
    Type: String
    NoEcho: true
    Default: ''
  LogLevel:
    Type: String
    Default: INFO
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {KeySchema: [], AttributeDefinitions: []}
  Secret:
    Type: AWS::SecretsManager::Secret
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Environment:
        Variables:
          AUTH_TABLE: !Ref Table
          TOKEN_SECRET_ARN: !Ref Secret
          SESSION_TOKEN_TABLE_ARN: !GetAtt Table.Arn
          API_KEY:
          LOG_LEVEL: !Ref LogLevel
          DB_PASSWORD: !Ref DbPassword
"""


def test_env_secrets_reads_parameters_references_and_empty_values(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(ENV)
    (finding,) = _by(_check(capsys, path), "env-secrets").values()
    assert "DB_PASSWORD" in finding["message"]
    for name in ("AUTH_TABLE", "TOKEN_SECRET_ARN", "SESSION_TOKEN_TABLE_ARN", "API_KEY", "LOG_LEVEL"):
        assert f"{name}:" not in finding["message"], name


STREAM = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  AuditTable:
    Type: AWS::DynamoDB::Table
    Properties: {KeySchema: [], AttributeDefinitions: [], StreamSpecification: {StreamViewType: NEW_IMAGE}}
  Auditor:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://bucket/auditor.zip
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt AuditTable.StreamArn
            StartingPosition: LATEST
  Archiver:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: s3://bucket/archiver.zip
"""


def test_names_come_from_the_template_and_notes_are_summarised(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(STREAM)
    (finding,) = _by(_check(capsys, path), "batch-partial-failure").values()
    assert "DynamoDB stream of table AuditTable" in finding["message"] and "00.000" not in finding["message"]
    assert main(["check", str(path), "--policies", str(ROOT / "policies")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: 2 functions: the code is in S3 (package-size counts only local code) - Archiver, Auditor"]
