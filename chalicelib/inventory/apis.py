"""API Gateway routes of functions: REST (GetResources embed=methods) and HTTP APIs (integrations, routes).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.

One function's routes (the event path) are read from the APIs that may invoke it, and only those: the APIs its
resource policy names (GetPolicy), the APIs that invoke it through an invocation role (the integration's
credentials, which no policy shows: the :class:`chalicelib.store.state.InvokerIndex` in the state table) and the API the
event itself names. Every read of an API keeps the index true for what it saw (``via_role`` routes recorded, stale
entries forgotten); a full read of the region's APIs (the sweep) writes every entry and marks the scope's index
built. Until a scope's index is built, a function no API has permission for falls back to reading every API in a
region of at most ``EVENT_PATH_MAX_APIS`` APIs (the behaviour before the index), else no API.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import describe_error, is_not_found
from chalicelib.core.log import logger
from chalicelib.core.model import (
    ApiRoute,
    FunctionRef,
    FunctionSnapshot,
    IntegrationResponse,
    invocation_mode,
    uri_qualifier,
)
from chalicelib.intake.events import function_from_uri
from chalicelib.inventory.common import FEW_FUNCTIONS, ReadContext, Reader

if TYPE_CHECKING:
    from chalicelib.store.state import InvokerIndex

# API Gateway's largest page (``limit`` up to 500; its default is 25): GetResources has a quota of its own, 5
# requests every 2 seconds per account (chalicelib/core/quotas.py), so fewer pages are a faster sweep.
PAGE = {"PageSize": 500}
REST_DEFAULT_TIMEOUT_MS = 29000
HTTP_DEFAULT_TIMEOUT_MS = 30000
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
WEBSOCKET_DEFAULT_TIMEOUT_MS = 29000  # and its maximum: a WebSocket API's limit is 29 s, not 30 s
# Only while a scope's invoker index was never built (a fresh install before its first sweep, a CLI replay without a
# table): a function no API has permission for is looked for behind invocation roles by reading every API, in a
# region of at most this many APIs (each costs a GetResources / GetIntegrations read; GetResources is 5 requests per
# 2 s per account, shared with the customer). Once built, the index names the APIs to read, in any region.
EVENT_PATH_MAX_APIS = 10
_SOURCE_API = re.compile(r"^arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:(?P<api>[a-z0-9]+)/")


class ApiReader(Reader):
    """API Gateway routes that target functions (REST and HTTP APIs)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self.index: InvokerIndex | None = None  # set by the Engine: its state table's invoker index
        self.writes_index = False  # the Engine turns this on when it acts (an event, a sweep with act)
        self._hints: dict[str, str] = {}  # API id -> kind ("rest", "v2"): the APIs the event being served names

    def hint(self, api_id: str, kind: str) -> None:
        """Read ``api_id`` (``rest`` or ``v2``) too when reading one function's routes: the API an integration
        event names (it may have just given the function an invocation role, which no index shows yet).

        Example:
            inventory.apis.hint("a1b2c3d4e5", "rest")
        """
        self._hints[api_id] = kind

    def load_routes(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``routes`` facet: every API route that targets each function. One event's few functions (an API
        import naming two, say) are read one by one, from their own APIs; a sweep reads every API once."""
        few = not bulk or (self.ctx.transient_raises and len(snapshots) <= FEW_FUNCTIONS)
        index: dict[str, list[ApiRoute]] | None = {} if few else None
        for snapshot in snapshots if few else ():
            own = self._routes_for_one(snapshot)
            if own is None:
                index = None
                break
            index = (index or {}) | {snapshot.arn: own.get(snapshot.arn, [])}
        if index is None:
            index = self.route_index()
        for snapshot in snapshots:
            snapshot.routes = tuple(index.get(snapshot.arn, ()))
            snapshot.loaded.add("routes")

    def _routes_for_one(self, snapshot: FunctionSnapshot) -> dict[str, list[ApiRoute]] | None:
        """Routes of one function from the APIs that may invoke it: those its resource policy allows, those the
        invoker index names and the event's own. None when every API must be read (the policy allows API Gateway
        without naming the API, or the fallback of an index never built in a small region)."""
        granted = _granted_apis(self.ctx.function_policy(snapshot.arn))
        if granted is None:
            return None
        indexed = dict((api, kind) for kind, api in self._indexed(snapshot.arn))
        if not granted and not indexed and not self._hints and not self._index_built():
            rest, http = self._api_lists()  # before the index: bounded, as before it existed
            return None if len(rest) + len(http) <= EVENT_PATH_MAX_APIS else {}
        wanted = sorted(({api: "" for api in granted} | self._hints | indexed).items())
        found = self.ctx.parallel("apigateway", lambda item: self._read_one_api(*item), wanted)
        routes: dict[str, list[ApiRoute]] = defaultdict(list)
        for (api, _), (read_at, read) in zip(wanted, found, strict=True):
            for function_arn, route in read:
                routes[function_arn].append(route)
            if api in indexed and not any(r.via_role for a, r in read if a == snapshot.arn):
                self._write_index("forget", snapshot.arn, indexed[api], api, read_at)
        return routes

    def _read_one_api(self, api: str, kind: str) -> tuple[float, list[tuple[str, ApiRoute]]]:
        """One API's routes (``kind`` ``rest``, ``v2`` or '' when unknown: REST first), when it was read, and its
        role-invoked routes recorded in the index; read once per run (two functions of one API share it)."""
        return self.ctx.once(f"api-routes:{api}:{kind}", lambda: self._read_api_now(api, kind))

    def _read_api_now(self, api: str, kind: str) -> tuple[float, list[tuple[str, ApiRoute]]]:
        read_at = self._now()
        if kind == "rest":
            routes = self._named_rest_api_routes(api)
        elif kind == "v2":
            routes = self._v2_api_routes(api)
        else:
            routes = self._named_rest_api_routes(api) or self._v2_api_routes(api)
        self._record_roles(routes, read_at)
        return read_at, routes

    def _record_roles(self, routes: list[tuple[str, ApiRoute]], read_at: float) -> None:
        """Record each function an API invokes through a role (once per function and API)."""
        seen = {(a, r.api_id, "rest" if r.kind == "rest" else "v2") for a, r in routes if r.via_role}
        for function_arn, api, kind in sorted(seen):
            self._write_index("record", function_arn, kind, api, read_at)

    def sync_api(self, api_id: str, kind: str, routes: list[tuple[str, ApiRoute]], read_at: float) -> None:
        """After reading a whole API (an import, a put, a moved route): record its role-invoked functions and
        forget the index entries of functions it no longer invokes through a role (one index Query)."""
        self._record_roles(routes, read_at)
        if self.index is None or not self.writes_index:
            return
        now_role = {a for a, r in routes if r.via_role}
        try:
            stale = [fn for fn, _ in self.index.functions_of(self.account, self.region, api_id) if fn not in now_role]
        except (ClientError, BotoCoreError) as exc:
            logger.warning("invoker index unreadable", extra={"api": api_id, "error": describe_error(exc)})
            return
        for function_arn in stale:
            self._write_index("forget", function_arn, kind, api_id, read_at)

    def _indexed(self, function_arn: str) -> list[tuple[str, str]]:
        """The index's ``(kind, api)`` entries of one function; none when there is no index or it is unreadable."""
        if self.index is None:
            return []
        try:
            return self.index.apis_for(function_arn)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("invoker index unreadable", extra={"function": function_arn, "error": describe_error(exc)})
            return []

    def _index_built(self) -> bool:
        if self.index is None:
            return False
        try:
            return self.index.built(self.account, self.region)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("invoker index unreadable", extra={"error": describe_error(exc)})
            return False

    def _write_index(self, how: str, function_arn: str, kind: str, api: str, read_at: float) -> None:
        """``record`` or ``forget`` one entry, when acting; a failed write is logged (the index is a hint: the
        sweep writes it again), never raised."""
        if self.index is None or not self.writes_index:
            return
        try:
            getattr(self.index, how)(function_arn, kind, api, read_at)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("invoker index not written", extra={"function": function_arn, "api": api,
                                                                "error": describe_error(exc)})

    def _now(self) -> float:
        return float(self.index.clock()) if self.index is not None else 0.0

    def route_index(self) -> dict[str, list[ApiRoute]]:
        """Every API Gateway integration in the region that targets a Lambda function, by function ARN (read
        once per run: every API's routes, in parallel)."""
        return self.ctx.once("route_index", self._read_route_index)

    def _read_route_index(self) -> dict[str, list[ApiRoute]]:
        """REST and HTTP APIs at once: GetResources (5 every 2 s) paces the REST reads, and the HTTP APIs' reads,
        on the 10/s control-plane budget only, must not queue behind them (chalicelib/core/quotas.py)."""
        started = self._now()
        rest, http = self._api_lists()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-api-routes") as side:
            http_found = side.submit(self.ctx.parallel, "apigatewayv2", lambda api: self._timed(
                lambda: self._http_api_routes(api["ApiId"], api.get("Name", ""), api.get("ProtocolType", "HTTP"))),
                http)
            found = self.ctx.parallel("apigateway", lambda api: self._timed(
                lambda: self._rest_api_routes(api["id"], api.get("name", ""))), rest)
            found += http_found.result()
        index: dict[str, list[ApiRoute]] = defaultdict(list)
        for read_at, routes in found:
            self._record_roles(routes, read_at)
            for function_arn, route in routes:
                index[function_arn].append(route)
        if self.index is not None and self.writes_index:
            try:  # every API was read: from now on the index alone names a function's role-invoking APIs
                self.index.mark_built(self.account, self.region, started)
            except (ClientError, BotoCoreError) as exc:
                logger.warning("invoker index not marked built", extra={"error": describe_error(exc)})
        return dict(index)

    def _timed(self, read: Any) -> tuple[float, list[tuple[str, ApiRoute]]]:
        """``(when the read began, read())``: an index entry carries the time of the reading it comes from."""
        read_at = self._now()
        return read_at, read()

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
                                                           integration.get("uri")),
                                via_role=bool(integration.get("credentials")))))
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
        read_at = self._now()
        routes = self._http_api_routes(api_id, "") if http else self._rest_api_routes(api_id, "")
        self.sync_api(api_id, "v2" if http else "rest", routes, read_at)
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
                    invocation=invocation_mode(integration.get("RequestParameters")),
                    via_role=bool(integration.get("CredentialsArn")))))
        return routes


def substitute(uri: str, variables: dict[str, str]) -> str:
    """``${stageVariables.x}`` replaced by the stage's value of ``x`` (left as it is when the stage has none).

    Example:
        >>> substitute("arn:aws:lambda:us-east-1:123456789012:function:orders:${stageVariables.a}", {"a": "live"})
        'arn:aws:lambda:us-east-1:123456789012:function:orders:live'
    """
    return _STAGE_VARIABLE.sub(lambda m: variables.get(m[1], m[0]), uri)


def _granted_apis(policy: dict[str, Any] | None) -> set[str] | None:
    """The API ids a function's resource policy lets API Gateway invoke it from (``aws:SourceArn``); None when a
    statement allows API Gateway without naming an API (any API may: every API must be read).

    Example:
        >>> _granted_apis({"Statement": [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
        ...     "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/*"}}}]})
        {'a1b2c3'}
    """
    api_ids: set[str] = set()
    for statement in (policy or {}).get("Statement", []):
        if not _allows_api_gateway(statement):
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
    return api_ids


def _allows_api_gateway(statement: Any) -> bool:
    """Whether a resource-policy statement lets API Gateway invoke the function."""
    principal = statement.get("Principal") if isinstance(statement, dict) else None
    service = principal.get("Service") if isinstance(principal, dict) else principal
    return statement.get("Effect") == "Allow" and "apigateway.amazonaws.com" in json.dumps(service)


def _integration_responses(integration: dict[str, Any]) -> tuple[IntegrationResponse, ...]:
    return tuple(IntegrationResponse(str(r.get("statusCode") or code), str(r.get("selectionPattern") or ""))
                 for code, r in sorted((integration.get("integrationResponses") or {}).items()))

