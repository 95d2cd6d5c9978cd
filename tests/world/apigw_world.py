"""API Gateway as AWS builds it where moto does not (a documented component of the test world, not a stub).

* HTTP API quick create (``CreateApi`` with ``Target``): AWS creates an ``AWS_PROXY`` integration to the target, a
  ``$default`` route to it and an auto-deployed ``$default`` stage
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop.html#http-api-examples.cli.quick-create).
  moto 5 creates only the API.
* HTTP API ``ImportApi`` / ``ReimportApi`` from OpenAPI: AWS creates one integration per
  ``x-amazon-apigateway-integration`` and a route per path and method (``POST /orders``)
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-open-api.html). moto 5 answers
  NotImplementedError for both.

The bot never calls these operations: it reads what they leave behind (GetIntegrations, GetRoutes, GetStages),
which moto serves. Only the writing side is built here, with moto's own create calls.
"""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def invocation_uri(function: str, region: str = REGION) -> str:
    """A REST integration's Lambda invocation URI (``function`` may hold ``${stageVariables.x}``)."""
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function}/invocations"


def quick_create(client: Any, name: str, target: str) -> str:
    """``CreateApi`` with ``Target`` as AWS carries it out; returns the ApiId."""
    api_id = str(client.create_api(Name=name, ProtocolType="HTTP", Target=target)["ApiId"])
    if not client.get_integrations(ApiId=api_id).get("Items"):  # moto: only the API; AWS: all three
        integration = client.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=target,
                                                PayloadFormatVersion="2.0")["IntegrationId"]
        client.create_route(ApiId=api_id, RouteKey="$default", Target=f"integrations/{integration}")
        client.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return api_id


def import_http_api(client: Any, spec: dict[str, Any], api_id: str = "") -> str:
    """``ImportApi`` (or, with ``api_id``, ``ReimportApi``) of an OpenAPI 3 document as AWS carries it out."""
    if not api_id:
        api_id = str(client.create_api(Name=spec["info"]["title"], ProtocolType="HTTP")["ApiId"])
    else:
        for route in client.get_routes(ApiId=api_id).get("Items", []):
            client.delete_route(ApiId=api_id, RouteId=route["RouteId"])
        for integration in client.get_integrations(ApiId=api_id).get("Items", []):
            client.delete_integration(ApiId=api_id, IntegrationId=integration["IntegrationId"])
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            spec_integration = operation["x-amazon-apigateway-integration"]
            integration = client.create_integration(
                ApiId=api_id, IntegrationType=spec_integration["type"].upper(), IntegrationUri=spec_integration["uri"],
                PayloadFormatVersion=spec_integration.get("payloadFormatVersion", "2.0"))["IntegrationId"]
            client.create_route(ApiId=api_id, RouteKey=f"{method.upper()} {path}",
                                Target=f"integrations/{integration}")
    return api_id


def openapi(title: str, routes: dict[str, str], http: bool = False) -> dict[str, Any]:
    """An OpenAPI 3 document as SAM / Chalice / CDK write it: ``{"GET /orders": function ARN}`` → Lambda proxy
    integrations (REST: the invocation URI; HTTP: the function ARN, payload 2.0)."""
    paths: dict[str, Any] = {}
    for route, function in routes.items():
        method, path = route.split(" ", 1)
        integration = ({"type": "aws_proxy", "httpMethod": "POST", "uri": function, "payloadFormatVersion": "2.0"}
                       if http else {"type": "AWS_PROXY", "httpMethod": "POST", "uri": invocation_uri(function)})
        paths.setdefault(path, {})[method.lower()] = {"x-amazon-apigateway-integration": integration}
    return {"openapi": "3.0.1", "info": {"title": title, "version": "1.0", "description": title}, "paths": paths}


def body(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec).encode()
