"""API Gateway routes of functions: REST (GetResources embed=methods) and HTTP APIs (integrations, routes).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import is_not_found
from chalicelib.events import function_from_uri
from chalicelib.inventory.common import ReadContext, Reader
from chalicelib.model import (
    ApiRoute,
    FunctionRef,
    FunctionSnapshot,
    IntegrationResponse,
    invocation_mode,
    uri_qualifier,
)

# API Gateway's largest page (``limit`` up to 500; its default is 25): GetResources has a quota of its own, 5
# requests every 2 seconds per account (chalicelib/quotas.py), so fewer pages are a faster sweep.
PAGE = {"PageSize": 500}
REST_DEFAULT_TIMEOUT_MS = 29000
HTTP_DEFAULT_TIMEOUT_MS = 30000
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
WEBSOCKET_DEFAULT_TIMEOUT_MS = 29000  # and its maximum: a WebSocket API's limit is 29 s, not 30 s
# a function no API has permission for is looked for behind invocation roles on its own events only in a region
# with at most this many APIs (each costs a GetResources / GetIntegrations read); beyond it the sweep finds them
EVENT_PATH_MAX_APIS = 10
_SOURCE_API = re.compile(r"^arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:(?P<api>[a-z0-9]+)/")


class ApiReader(Reader):
    """API Gateway routes that target functions (REST and HTTP APIs)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)

    def load_routes(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``routes`` facet: every API route that targets each function."""
        index = self._routes_for_one(snapshots[0]) if not bulk else None
        if index is None:
            index = self.route_index()
        for snapshot in snapshots:
            snapshot.routes = tuple(index.get(snapshot.arn, ()))
            snapshot.loaded.add("routes")

    def _routes_for_one(self, snapshot: FunctionSnapshot) -> dict[str, list[ApiRoute]] | None:
        """Routes of one function via its resource policy: only the APIs allowed to invoke it are read.
        None when the policy allows API Gateway without naming the API (then the full index is used)."""
        policy = self.ctx.function_policy(snapshot.arn)
        api_ids: set[str] = set()
        statements = (policy or {}).get("Statement", [])
        if not any(_allows_api_gateway(s) for s in statements):
            # no permission for API Gateway: only an invocation role can invoke it, which only every API's routes
            # show; one event reads them only in a region with few APIs (GetResources is 5 requests per 2 s per
            # account, shared with the customer), else the sweep finds such an API, as it always has
            rest, http = self._api_lists()
            return None if len(rest) + len(http) <= EVENT_PATH_MAX_APIS else {}
        for statement in statements:
            principal = statement.get("Principal")
            service = principal.get("Service") if isinstance(principal, dict) else principal
            if statement.get("Effect") != "Allow" or "apigateway.amazonaws.com" not in json.dumps(service):
                continue
            condition = statement.get("Condition") or {}
            sources = [v for op in condition.values() if isinstance(op, dict)
                       for k, v in op.items() if k.lower() == "aws:sourcearn"]
            if not sources:
                return None
            for source in sources:
                for arn in source if isinstance(source, list) else [source]:
                    m = _SOURCE_API.match(str(arn))
                    if not m:
                        return None
                    api_ids.add(m["api"])
        index: dict[str, list[ApiRoute]] = defaultdict(list)
        found = self.ctx.parallel("apigateway", lambda api: self._named_rest_api_routes(api) or
                                  self._v2_api_routes(api), sorted(api_ids))
        for function_arn, route in (item for routes in found for item in routes):
            index[function_arn].append(route)
        return index

    def route_index(self) -> dict[str, list[ApiRoute]]:
        """Every API Gateway integration in the region that targets a Lambda function, by function ARN (read
        once per run: every API's routes, in parallel)."""
        return self.ctx.once("route_index", self._read_route_index)

    def _read_route_index(self) -> dict[str, list[ApiRoute]]:
        """REST and HTTP APIs at once: GetResources (5 every 2 s) paces the REST reads, and the HTTP APIs' reads,
        on the 10/s control-plane budget only, must not queue behind them (chalicelib/quotas.py)."""
        rest, http = self._api_lists()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-api-routes") as side:
            http_found = side.submit(self.ctx.parallel, "apigatewayv2", lambda api: self._http_api_routes(
                api["ApiId"], api.get("Name", ""), api.get("ProtocolType", "HTTP")), http)
            found = self.ctx.parallel("apigateway", lambda api: self._rest_api_routes(api["id"], api.get("name", "")),
                                      rest)
            found += http_found.result()
        index: dict[str, list[ApiRoute]] = defaultdict(list)
        for function_arn, route in (item for routes in found for item in routes):
            index[function_arn].append(route)
        return dict(index)

    def _api_lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The region's REST APIs and its HTTP / WebSocket APIs (listed once per run)."""
        def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            rest, http = self.ctx.parallel("apigateway", lambda list_apis: list_apis(),
                                           [self._rest_apis, self._http_apis])
            return rest, http
        return self.ctx.once("api_lists", read)

    def _rest_apis(self) -> list[dict[str, Any]]:
        pages = self.clients("apigateway").get_paginator("get_rest_apis").paginate(PaginationConfig=PAGE)
        return [api for page in pages for api in page.get("items", [])]

    def _http_apis(self) -> list[dict[str, Any]]:
        return [api for page in self.clients("apigatewayv2").get_paginator("get_apis").paginate()
                for api in page.get("Items", []) if api.get("ProtocolType") in ("HTTP", "WEBSOCKET")]

    def _rest_api_routes(self, api_id: str, api_name: str) -> list[tuple[str, ApiRoute]]:
        routes = []
        try:
            pages = self.clients("apigateway").get_paginator("get_resources").paginate(
                restApiId=api_id, embed=["methods"], PaginationConfig=PAGE)
            for page in pages:
                for resource in page.get("items", []):
                    for method, spec in (resource.get("resourceMethods") or {}).items():
                        integration = spec.get("methodIntegration") or {}
                        if integration.get("type") not in ("AWS", "AWS_PROXY"):
                            continue
                        for ref, stage in self._targets(api_id, integration.get("uri"), "apigateway"):
                            routes.append((ref.arn, ApiRoute(
                                "rest", api_id, api_name, f"{method} {resource.get('path', '')}{stage}",
                                integration["type"], int(integration.get("timeoutInMillis") or REST_DEFAULT_TIMEOUT_MS),
                                resource_id=resource["id"], http_method=method,
                                qualifier=uri_qualifier(integration.get("uri")),
                                responses=_integration_responses(integration),
                                invocation=invocation_mode(integration.get("requestParameters"),
                                                           integration.get("responseTransferMode"),
                                                           integration.get("uri")))))
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return routes

    def _targets(self, api_id: str, uri: Any, service: str) -> list[tuple[FunctionRef, str]]:
        """The functions an integration URI targets, and (for a URI with ``${stageVariables.x}``) the stage that
        names each, as ``" (stage prod)"``: every stage's value is resolved (GetStages once per API)."""
        if not isinstance(uri, str) or "${stageVariables." not in uri:
            ref = function_from_uri(uri, self.account, self.region)
            return [(ref, "")] if ref else []
        found: dict[FunctionRef, list[str]] = defaultdict(list)
        for stage, variables in self._stage_variables(api_id, service):
            resolved = substitute(uri, variables)
            ref = function_from_uri(resolved, self.account, self.region) if "${" not in resolved else None
            if ref:
                found[ref].append(stage)
        return [(ref, f" (stage {', '.join(sorted(stages))})") for ref, stages in found.items()]

    def _stage_variables(self, api_id: str, service: str) -> list[tuple[str, dict[str, str]]]:
        """Each stage of an API and its stage variables (REST ``variables``, HTTP ``StageVariables``)."""
        def read() -> list[tuple[str, dict[str, str]]]:
            if service == "apigateway":
                items = self.clients(service).get_stages(restApiId=api_id).get("item", [])
                return [(str(s.get("stageName", "")), dict(s.get("variables") or {})) for s in items]
            pages = self.clients(service).get_paginator("get_stages").paginate(ApiId=api_id)
            return [(str(s.get("StageName", "")), dict(s.get("StageVariables") or {}))
                    for page in pages for s in page.get("Items", [])]
        return list(self.ctx.once(f"stages:{api_id}", read))

    def functions_of_api(self, api_id: str, http: bool) -> list[FunctionRef]:
        """Every function a Lambda integration of one API targets (every stage's, for stage variables): what an
        OpenAPI import, a quick create or a moved route re-evaluates.

        Example:
            inventory.apis.functions_of_api("a1b2c3d4e5", http=True)
            # -> [FunctionRef(name='orders-api', ...)]
        """
        routes = self._http_api_routes(api_id, "") if http else self._rest_api_routes(api_id, "")
        refs = dict.fromkeys(FunctionRef.parse(arn, self.account, self.region) for arn, _ in routes)
        return [ref for ref in refs if ref is not None]

    def _named_rest_api_routes(self, api_id: str) -> list[tuple[str, ApiRoute]]:
        """A REST API named by a resource policy: its routes, named as the full index names them (GetRestApi,
        read only when the API has routes to the function)."""
        routes = self._rest_api_routes(api_id, "")
        if not routes:
            return routes
        try:
            name = str(self.clients("apigateway").get_rest_api(restApiId=api_id).get("name") or "")
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return [(arn, dataclasses.replace(route, api_name=name)) for arn, route in routes]

    def _v2_api_routes(self, api_id: str) -> list[tuple[str, ApiRoute]]:
        """An HTTP or WebSocket API named by a resource policy: its name and protocol first (GetApi)."""
        try:
            api = self.clients("apigatewayv2").get_api(ApiId=api_id)
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return self._http_api_routes(api_id, api.get("Name", ""), api.get("ProtocolType", "HTTP"))

    def _http_api_routes(self, api_id: str, api_name: str, protocol: str = "HTTP") -> list[tuple[str, ApiRoute]]:
        client = self.clients("apigatewayv2")
        try:
            integrations = [i for page in client.get_paginator("get_integrations").paginate(ApiId=api_id)
                            for i in page.get("Items", [])]
            route_keys: dict[str, list[str]] = defaultdict(list)
            for page in client.get_paginator("get_routes").paginate(ApiId=api_id):
                for route in page.get("Items", []):
                    target = route.get("Target", "")
                    if target.startswith("integrations/"):
                        route_keys[target.split("/", 1)[1]].append(route.get("RouteKey", ""))
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        websocket = protocol == "WEBSOCKET"
        kinds = ("AWS_PROXY", "AWS") if websocket else ("AWS_PROXY",)
        routes = []
        for integration in integrations:
            if integration.get("IntegrationType") not in kinds:
                continue
            for ref, stage in self._targets(api_id, integration.get("IntegrationUri"), "apigatewayv2"):
                keys = route_keys.get(integration["IntegrationId"]) or [f"integration {integration['IntegrationId']}"]
                # a WebSocket integration never waits more than 29 s, whatever it states (moto states 30 s)
                limit = WEBSOCKET_DEFAULT_TIMEOUT_MS if websocket else HTTP_DEFAULT_TIMEOUT_MS
                routes.append((ref.arn, ApiRoute(
                    "websocket" if websocket else "http", api_id, api_name, ", ".join(sorted(keys)) + stage,
                    str(integration["IntegrationType"]), min(int(integration.get("TimeoutInMillis") or limit), limit),
                    integration_id=integration["IntegrationId"],
                    qualifier=uri_qualifier(integration.get("IntegrationUri")),
                    invocation=invocation_mode(integration.get("RequestParameters")))))
        return routes


def substitute(uri: str, variables: dict[str, str]) -> str:
    """``${stageVariables.x}`` replaced by the stage's value of ``x`` (left as it is when the stage has none).

    Example:
        >>> substitute("arn:aws:lambda:us-east-1:123456789012:function:orders:${stageVariables.a}", {"a": "live"})
        'arn:aws:lambda:us-east-1:123456789012:function:orders:live'
    """
    return _STAGE_VARIABLE.sub(lambda m: variables.get(m[1], m[0]), uri)


def _allows_api_gateway(statement: Any) -> bool:
    """Whether a resource-policy statement lets API Gateway invoke the function."""
    principal = statement.get("Principal") if isinstance(statement, dict) else None
    service = principal.get("Service") if isinstance(principal, dict) else principal
    return statement.get("Effect") == "Allow" and "apigateway.amazonaws.com" in json.dumps(service)


def _integration_responses(integration: dict[str, Any]) -> tuple[IntegrationResponse, ...]:
    return tuple(IntegrationResponse(str(r.get("statusCode") or code), str(r.get("selectionPattern") or ""))
                 for code, r in sorted((integration.get("integrationResponses") or {}).items()))

