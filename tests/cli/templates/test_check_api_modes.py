"""Item 0 of issue 25 before deploy: ``check`` reads asynchronous and streamed integrations and WebSocket APIs.

An asynchronous integration (``X-Amz-Invocation-Type: 'Event'``) or a streamed one (``ResponseTransferMode:
STREAM``, the ``response-streaming-invocations`` URI) does not hold the client until the function answers, so
neither apigw-timeout nor sync-error-status may flag the function behind it; a WebSocket API's limit is 29 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Worker:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Timeout: 900
      MemorySize: 1024
      Role: arn:aws:iam::123456789012:role/worker
      Code: {ZipFile: "def handler(e, c): return {}"}
  Streamer:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: nodejs22.x
      Handler: index.handler
      Timeout: 900
      MemorySize: 1024
      Role: arn:aws:iam::123456789012:role/streamer
      Code: {ZipFile: "exports.handler = async () => ({})"}
  Status:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Timeout: 60
      MemorySize: 1024
      Role: arn:aws:iam::123456789012:role/status
      Code: {ZipFile: "def handler(e, c): return {}"}
  Chat:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Timeout: 29
      MemorySize: 1024
      Role: arn:aws:iam::123456789012:role/chat
      Code: {ZipFile: "def handler(e, c): return {}"}
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties: {Name: jobs}
  JobsResource:
    Type: AWS::ApiGateway::Resource
    Properties: {RestApiId: !Ref Api, ParentId: !GetAtt Api.RootResourceId, PathPart: jobs}
  JobsPost:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref JobsResource
      HttpMethod: POST
      AuthorizationType: NONE
      Integration:
        Type: AWS
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Worker.Arn}/invocations
        RequestParameters:
          integration.request.header.X-Amz-Invocation-Type: "'Event'"
        IntegrationResponses:
          - StatusCode: '202'
  StreamGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref JobsResource
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        ResponseTransferMode: STREAM
        Uri: !Sub
          - arn:aws:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${Fn}/response-streaming-invocations
          - Fn: !GetAtt Streamer.Arn
  StatusGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref JobsResource
      HttpMethod: PUT
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Status.Arn}/invocations
  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: chat, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  SocketIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Chat.Arn}/invocations
"""


def _check(capsys: Any, path: Path) -> dict[str, Any]:
    code = main(["check", str(path), "--policies", str(ROOT / "policies"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    return dict(json.loads(out))


def _by(report: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]: f for f in report["findings"] if f["policy"] == policy}


def test_async_and_streamed_rest_integrations_are_not_held_to_29s(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    report = _check(capsys, path)
    timeouts = _by(report, "apigw-timeout")
    assert "Worker" not in timeouts and "Streamer" not in timeouts
    assert "Worker" not in _by(report, "sync-error-status")
    assert timeouts["Status"]["fix"]["value"] == 25


def test_a_websocket_api_has_a_29s_limit_and_is_named_so(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    chat = _by(_check(capsys, path), "apigw-timeout")["Chat"]
    assert chat["fix"]["value"] == 25 and "29s integration timeout of WebSocket API Socket" in chat["message"]


def test_the_async_header_without_quotes_is_no_literal_and_keeps_the_finding(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("\"'Event'\"", "method.request.header.InvocationType"))
    worker = _by(_check(capsys, path), "apigw-timeout")["Worker"]
    assert "caller chooses the invocation type" in worker["message"]


def _plan() -> dict[str, Any]:
    def resource(kind: str, name: str, values: dict[str, Any]) -> dict[str, Any]:
        return {"address": f"{kind}.{name}", "mode": "managed", "type": kind, "name": name, "values": values}

    def ref(address: str, attribute: str) -> dict[str, Any]:
        return {"references": [f"{address}.{attribute}", address]}

    functions = [resource("aws_lambda_function", n, {"function_name": n, "timeout": t, "memory_size": 1024,
                                                      "runtime": "python3.12", "role": "arn:aws:iam::1:role/r"})
                 for n, t in (("worker", 900), ("streamer", 900), ("chat", 29))]
    planned = [*functions,
               resource("aws_api_gateway_integration", "jobs", {
                   "http_method": "POST", "type": "AWS", "request_parameters": {
                       "integration.request.header.X-Amz-Invocation-Type": "'Event'"}}),
               resource("aws_api_gateway_integration", "stream", {
                   "http_method": "GET", "type": "AWS_PROXY", "response_transfer_mode": "STREAM"}),
               resource("aws_apigatewayv2_api", "chat", {"name": "chat", "protocol_type": "WEBSOCKET"}),
               resource("aws_apigatewayv2_integration", "chat", {"integration_type": "AWS_PROXY"})]
    expressions = {
        "aws_api_gateway_integration.jobs": {"uri": ref("aws_lambda_function.worker", "invoke_arn")},
        "aws_api_gateway_integration.stream": {"uri": ref("aws_lambda_function.streamer", "invoke_arn")},
        "aws_apigatewayv2_integration.chat": {"integration_uri": ref("aws_lambda_function.chat", "invoke_arn"),
                                              "api_id": ref("aws_apigatewayv2_api.chat", "id")},
    }
    config = [{"address": r["address"], "mode": "managed", "type": r["type"], "name": r["name"],
               "expressions": expressions.get(r["address"], {})} for r in planned]
    return {"format_version": "1.2", "terraform_version": "1.9.0",
            "planned_values": {"root_module": {"resources": planned}},
            "configuration": {"root_module": {"resources": config}}}


def test_terraform_plans_read_the_same_modes(capsys, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_plan()))
    timeouts = _by(_check(capsys, path), "apigw-timeout")
    assert set(timeouts) == {"aws_lambda_function.chat"}
    assert "WebSocket API" in timeouts["aws_lambda_function.chat"]["message"]


def test_either_the_transfer_mode_or_the_streaming_uri_marks_a_streamed_route(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("        ResponseTransferMode: STREAM\n", ""))
    assert "Streamer" not in _by(_check(capsys, path), "apigw-timeout")
    buffered = TEMPLATE.replace("        ResponseTransferMode: STREAM\n", "").replace(
        "2021-11-15/functions/${Fn}/response-streaming-invocations", "2015-03-31/functions/${Fn}/invocations")
    path.write_text(buffered)
    assert _by(_check(capsys, path), "apigw-timeout")["Streamer"]["fix"]["value"] == 25
