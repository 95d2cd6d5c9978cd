"""Item 0 of issue 25: the bot never shortens a function API Gateway does not wait for.

An integration that invokes the function asynchronously (``X-Amz-Invocation-Type: 'Event'``) answers 202 at
once; a streamed one (``responseTransferMode: STREAM``, the ``response-streaming-invocations`` URI) may run for
15 minutes. Neither is held to the 29 s integration timeout, so apigw-timeout (mode ``auto``) must not cut such
a worker, and sync-error-status must not claim its errors reach clients as 200. Tested through the deployed
event handler's code path (``handle_event``) on moto; WebSocket APIs have a 29 s limit and are named so.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.bot.handlers import handle_event
from tests.world.apigw_streaming import remember_transfer_mode

ACCOUNT, REGION = "123456789012", "us-east-1"
ASYNC = {"integration.request.header.X-Amz-Invocation-Type": "'Event'"}


def _worker(aws: Any, timeout: int = 900) -> str:
    return aws.function("example-fn", timeout=timeout)


def _rest_method(aws: Any, arn: str, *, kind: str = "AWS_PROXY", params: dict[str, str] | None = None,
                 streaming: bool = False, responses: tuple[tuple[str, str], ...] = (),
                 path: str = "jobs") -> str:
    api = aws.client("apigateway")
    api_id = api.create_rest_api(name=f"{path}-api")["id"]
    root = api.get_resources(restApiId=api_id)["items"][0]["id"]
    resource = api.create_resource(restApiId=api_id, parentId=root, pathPart=path)["id"]
    api.put_method(restApiId=api_id, resourceId=resource, httpMethod="POST", authorizationType="NONE")
    action = ("2021-11-15", "response-streaming-invocations") if streaming else ("2015-03-31", "invocations")
    extra: dict[str, Any] = {"requestParameters": params} if params else {}
    if streaming:
        extra["responseTransferMode"] = "STREAM"
    api.put_integration(restApiId=api_id, resourceId=resource, httpMethod="POST", type=kind,
                        integrationHttpMethod="POST",
                        uri=f"arn:aws:apigateway:{REGION}:lambda:path/{action[0]}/functions/{arn}/{action[1]}",
                        **extra)
    for status, pattern in responses:
        api.put_method_response(restApiId=api_id, resourceId=resource, httpMethod="POST", statusCode=status)
        api.put_integration_response(restApiId=api_id, resourceId=resource, httpMethod="POST", statusCode=status,
                                     selectionPattern=pattern)
    aws.client("lambda").add_permission(
        FunctionName=arn, StatementId=f"apigw-{api_id}", Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/POST/{path}")
    return str(api_id)


def _put_integration(event: Any, aws: Any, api_id: str) -> dict[str, Any]:
    """The CloudTrail record of the PutIntegration that made the integration what it is now (as AWS logs it)."""
    api = aws.client("apigateway")
    resource = next(r for r in api.get_resources(restApiId=api_id)["items"] if r["path"] != "/")
    now = api.get_integration(restApiId=api_id, resourceId=resource["id"], httpMethod="POST")
    record = event("apigateway-PutIntegration")
    request = record["detail"]["requestParameters"]
    request.update(restApiId=api_id, resourceId=resource["id"], httpMethod="POST")
    request["putIntegrationInput"].update(type=now["type"], uri=now["uri"],
                                          requestParameters=now.get("requestParameters") or {})
    record["detail"]["responseElements"].update(type=now["type"], uri=now["uri"])
    if now.get("responseTransferMode"):
        request["putIntegrationInput"]["responseTransferMode"] = now["responseTransferMode"]
        record["detail"]["responseElements"]["responseTransferMode"] = now["responseTransferMode"]
    return dict(record)


def _policies(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["policy"]: f for f in report["findings"]}


def _timeout(aws: Any) -> int:
    return int(aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"])


def test_async_rest_integration_leaves_a_900s_worker_untouched(aws, runtime, event):
    arn = _worker(aws)
    api_id = _rest_method(aws, arn, kind="AWS", params=ASYNC, responses=(("200", ""),))
    report = handle_event(_put_integration(event, aws, api_id), runtime=runtime)
    assert report["skipped"] is None and report["function"] == arn
    found = _policies(report)
    assert "apigw-timeout" not in found and "sync-error-status" not in found
    assert _timeout(aws) == 900


def test_streaming_rest_integration_leaves_a_900s_worker_untouched(aws, runtime, event, monkeypatch):
    remember_transfer_mode(monkeypatch)
    arn = _worker(aws)
    api_id = _rest_method(aws, arn, streaming=True)
    report = handle_event(_put_integration(event, aws, api_id), runtime=runtime)
    assert report["skipped"] is None and report["function"] == arn
    assert "apigw-timeout" not in _policies(report)
    assert _timeout(aws) == 900


def test_a_synchronous_route_next_to_an_async_one_still_gets_the_fix(aws, runtime, event):
    arn = _worker(aws, timeout=60)
    _rest_method(aws, arn, kind="AWS", params=ASYNC, responses=(("200", ""),), path="jobs")
    _rest_method(aws, arn, path="status")
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    finding = _policies(report)["apigw-timeout"]
    assert (finding["outcome"], finding["fix"]["params"]) == ("fixed", {"Timeout": 25})
    assert "POST /status" in finding["message"] and _timeout(aws) == 25


def test_invocation_type_chosen_by_the_caller_is_reported_but_never_cut(aws, runtime, event):
    arn = _worker(aws)
    _rest_method(aws, arn, kind="AWS", responses=(("200", ""),),
                 params={"integration.request.header.X-Amz-Invocation-Type": "method.request.header.InvocationType"})
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    finding = _policies(report)["apigw-timeout"]
    assert finding["fix"] is None and "caller chooses the invocation type" in finding["message"]
    assert _timeout(aws) == 900


def test_sync_non_proxy_rest_integration_still_reports_error_status(aws, runtime, event):
    arn = _worker(aws, timeout=20)
    api_id = _rest_method(aws, arn, kind="AWS", responses=(("200", ""),),
                          params={"integration.request.header.X-Amz-Invocation-Type": "'RequestResponse'"})
    report = handle_event(_put_integration(event, aws, api_id), runtime=runtime)
    assert "sync-error-status" in _policies(report)


@pytest.mark.parametrize("timeout, expected", [(29, 25), (26, 25)])
def test_websocket_api_has_a_29s_limit_and_is_named_so(aws, runtime, event, timeout, expected):
    arn = _worker(aws, timeout=timeout)
    v2 = aws.client("apigatewayv2")
    api_id = v2.create_api(Name="chat", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")[
        "ApiId"]
    integration = v2.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                        IntegrationUri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                                                       f"{arn}/invocations")["IntegrationId"]
    v2.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{integration}")
    aws.client("lambda").add_permission(
        FunctionName=arn, StatementId="ws", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*")
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    finding = _policies(report)["apigw-timeout"]
    assert finding["fix"]["params"] == {"Timeout": expected}
    assert "29s integration timeout of WebSocket API chat ($default)" in finding["message"]
    assert _timeout(aws) == expected
