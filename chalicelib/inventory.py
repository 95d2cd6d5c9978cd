"""The only place that reads AWS: functions into typed snapshots, lazily and in bulk.

Two reading strategies, chosen by how many functions are asked for:

* one function (the event path): GetFunction (config + tags + concurrency in one call), the function's own
  event source mappings, and its API routes found through its resource policy (which APIs may invoke it);
* many functions (a sweep): ListFunctions pages, tags from the Resource Groups Tagging API, account-wide
  ListEventSourceMappings pages, every API's integrations once, metrics 500 series per GetMetricData call.

Example:
    >>> inventory = Inventory(Clients("us-east-1"), "123456789012")
    >>> snapshot = inventory.function(FunctionRef("orders-api", "123456789012", "us-east-1"))
    >>> inventory.load({"routes": [snapshot]}, {})
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

from botocore.exceptions import ClientError

from chalicelib.aws import Clients, is_not_found, is_unsupported
from chalicelib.events import Change, function_from_uri
from chalicelib.model import (AccountFacts, ApiRoute, EventSourceMapping, FunctionRef, FunctionSnapshot, Layer,
                              MetricQuery)

REST_DEFAULT_TIMEOUT_MS = 29000
HTTP_DEFAULT_TIMEOUT_MS = 30000
METRIC_QUERIES_PER_CALL = 500
_SOURCE_API = re.compile(r"^arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:(?P<api>[a-z0-9]+)/")


def snapshot_from_config(config: dict[str, Any], tags: Optional[dict[str, str]] = None) -> FunctionSnapshot:
    """Build a snapshot from a GetFunction / ListFunctions configuration dict.

    Example:
        >>> snapshot_from_config({"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}).name
        'f'
    """
    ref = FunctionRef.parse(config["FunctionArn"], "", "")
    if ref is None:
        raise ValueError(f"not a function ARN: {config.get('FunctionArn')!r}")
    vpc = config.get("VpcConfig") or {}
    return FunctionSnapshot(
        ref=ref,
        runtime=config.get("Runtime", ""),
        memory_mb=int(config.get("MemorySize", 128)),
        timeout_s=int(config.get("Timeout", 3)),
        code_size=int(config.get("CodeSize", 0)),
        layers=tuple(Layer(layer["Arn"], int(layer.get("CodeSize", 0))) for layer in config.get("Layers") or []),
        role=config.get("Role", ""),
        tags=dict(tags or {}),
        env=dict((config.get("Environment") or {}).get("Variables") or {}),
        vpc_id=vpc.get("VpcId", "") or "",
        subnet_ids=tuple(vpc.get("SubnetIds") or ()),
        ephemeral_mb=int((config.get("EphemeralStorage") or {}).get("Size", 512)),
        package_type=config.get("PackageType", "Zip"),
    )


def _mapping(item: dict[str, Any]) -> EventSourceMapping:
    return EventSourceMapping(
        uuid=item["UUID"], source_arn=item.get("EventSourceArn", ""), function_arn=item.get("FunctionArn", ""),
        batch_size=int(item.get("BatchSize") or 0), response_types=tuple(item.get("FunctionResponseTypes") or ()),
        state=item.get("State", ""),
    )


def _unqualified(arn: str) -> str:
    ref = FunctionRef.parse(arn, "", "")
    return ref.arn if ref else arn


class Inventory:
    """Reads one account and region. Caches what does not change within a run (APIs, account facts)."""

    def __init__(self, clients: Clients, account: str) -> None:
        self.clients = clients
        self.account = account
        self.region = clients.region
        self._account_facts: Optional[AccountFacts] = None
        self._route_index: Optional[dict[str, list[ApiRoute]]] = None
        self._mapping_index: Optional[dict[str, list[EventSourceMapping]]] = None

    # -- functions -------------------------------------------------------------------------------

    def function(self, ref: FunctionRef) -> Optional[FunctionSnapshot]:
        """Re-read one function (config, tags and reserved concurrency in one call); None if it is gone."""
        try:
            response = self.clients("lambda").get_function(FunctionName=ref.arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        snapshot = snapshot_from_config(response["Configuration"], response.get("Tags"))
        snapshot.reserved_concurrency = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        snapshot.loaded.update({"tags", "concurrency"})
        return snapshot

    def mapping(self, uuid: str) -> Optional[EventSourceMapping]:
        """Re-read one event source mapping; None if it is gone."""
        try:
            return _mapping(self.clients("lambda").get_event_source_mapping(UUID=uuid))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def reserved_concurrency(self, ref: FunctionRef) -> Optional[int]:
        """The function's reserved concurrency (GetFunctionConcurrency: exact, 0 included); None if unset."""
        value = self.clients("lambda").get_function_concurrency(FunctionName=ref.arn).get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    def all_functions(self) -> Iterator[FunctionSnapshot]:
        """Every function in the region with its tags (ListFunctions + tagging API pages)."""
        tags = self._all_tags()
        for page in self.clients("lambda").get_paginator("list_functions").paginate():
            for config in page["Functions"]:
                snapshot = snapshot_from_config(config, tags.get(_unqualified(config["FunctionArn"])))
                snapshot.loaded.add("tags")
                yield snapshot

    def _all_tags(self) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {}
        paginator = self.clients("resourcegroupstaggingapi").get_paginator("get_resources")
        for page in paginator.paginate(ResourceTypeFilters=["lambda:function"], ResourcesPerPage=100):
            for item in page.get("ResourceTagMappingList", []):
                tags[_unqualified(item["ResourceARN"])] = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        return tags

    def resolve(self, change: Change) -> Optional[FunctionRef]:
        """The function a change is about: named in the event, or looked up (mapping, integration)."""
        if change.function:
            return change.function
        kind, *args = change.lookup or ("",)
        try:
            if kind == "mapping":
                arn = self.clients("lambda").get_event_source_mapping(UUID=args[0]).get("FunctionArn", "")
                return FunctionRef.parse(arn, self.account, self.region)
            if kind == "rest-integration":
                api, resource, method = args
                uri = self.clients("apigateway").get_integration(
                    restApiId=api, resourceId=resource, httpMethod=method).get("uri")
                return function_from_uri(uri, self.account, self.region)
            if kind == "http-integration":
                api, integration = args
                uri = self.clients("apigatewayv2").get_integration(ApiId=api, IntegrationId=integration)
                return function_from_uri(uri.get("IntegrationUri"), self.account, self.region)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return None

    # -- facets ----------------------------------------------------------------------------------

    def load(self, needs: dict[str, list[FunctionSnapshot]], queries: dict[str, set[MetricQuery]]) -> None:
        """Read the facets the checks need: ``needs`` maps a facet to the snapshots that need it and
        ``queries`` a function ARN to the metric series its checks asked for. More than one function
        switches to the account-wide bulk reads."""
        bulk = len({s.arn for group in needs.values() for s in group}) > 1
        if needs.get("mappings"):
            self._load_mappings(needs["mappings"], bulk)
        if needs.get("routes"):
            self._load_routes(needs["routes"], bulk)
        for snapshot in needs.get("concurrency", []):
            if "concurrency" not in snapshot.loaded:
                response = self.clients("lambda").get_function_concurrency(FunctionName=snapshot.arn)
                snapshot.reserved_concurrency = response.get("ReservedConcurrentExecutions")
                snapshot.loaded.add("concurrency")
        if needs.get("metrics"):
            self._load_metrics(needs["metrics"], queries)

    def _load_mappings(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        by_function = self.mapping_index() if bulk else self._read_mappings(snapshots[0].name)
        for snapshot in snapshots:
            snapshot.mappings = tuple(by_function.get(snapshot.arn, ()))
            snapshot.loaded.add("mappings")

    def mapping_index(self) -> dict[str, list[EventSourceMapping]]:
        """Every event source mapping in the region, by unqualified function ARN (read once per run)."""
        if self._mapping_index is None:
            self._mapping_index = self._read_mappings(None)
        return self._mapping_index

    def _read_mappings(self, function_name: Optional[str]) -> dict[str, list[EventSourceMapping]]:
        paginator = self.clients("lambda").get_paginator("list_event_source_mappings")
        by_function: dict[str, list[EventSourceMapping]] = defaultdict(list)
        for page in paginator.paginate(**({"FunctionName": function_name} if function_name else {})):
            for item in page.get("EventSourceMappings", []):
                by_function[_unqualified(item.get("FunctionArn", ""))].append(_mapping(item))
        return by_function

    def _load_routes(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        index = self._routes_for_one(snapshots[0]) if not bulk else None
        if index is None:
            index = self.route_index()
        for snapshot in snapshots:
            snapshot.routes = tuple(index.get(snapshot.arn, ()))
            snapshot.loaded.add("routes")

    def _routes_for_one(self, snapshot: FunctionSnapshot) -> Optional[dict[str, list[ApiRoute]]]:
        """Routes of one function via its resource policy: only the APIs allowed to invoke it are read.
        None when the policy allows API Gateway without naming the API (then the full index is used)."""
        try:
            policy = json.loads(self.clients("lambda").get_policy(FunctionName=snapshot.arn)["Policy"])
        except ClientError as exc:
            if is_not_found(exc):
                return {}
            raise
        api_ids: set[str] = set()
        for statement in policy.get("Statement", []):
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
        for api_id in sorted(api_ids):
            for function_arn, route in self._rest_api_routes(api_id, "") or self._http_api_routes(api_id, ""):
                index[function_arn].append(route)
        return index

    def route_index(self) -> dict[str, list[ApiRoute]]:
        """Every API Gateway integration in the region that targets a Lambda function, by function ARN."""
        if self._route_index is None:
            index: dict[str, list[ApiRoute]] = defaultdict(list)
            for page in self.clients("apigateway").get_paginator("get_rest_apis").paginate():
                for api in page.get("items", []):
                    for function_arn, route in self._rest_api_routes(api["id"], api.get("name", "")):
                        index[function_arn].append(route)
            for page in self.clients("apigatewayv2").get_paginator("get_apis").paginate():
                for api in page.get("Items", []):
                    if api.get("ProtocolType") == "HTTP":
                        for function_arn, route in self._http_api_routes(api["ApiId"], api.get("Name", "")):
                            index[function_arn].append(route)
            self._route_index = dict(index)
        return self._route_index

    def _rest_api_routes(self, api_id: str, api_name: str) -> list[tuple[str, ApiRoute]]:
        routes = []
        try:
            pages = self.clients("apigateway").get_paginator("get_resources").paginate(
                restApiId=api_id, embed=["methods"])
            for page in pages:
                for resource in page.get("items", []):
                    for method, spec in (resource.get("resourceMethods") or {}).items():
                        integration = spec.get("methodIntegration") or {}
                        if integration.get("type") not in ("AWS", "AWS_PROXY"):
                            continue
                        ref = function_from_uri(integration.get("uri"), self.account, self.region)
                        if ref:
                            routes.append((ref.arn, ApiRoute(
                                "rest", api_id, api_name, f"{method} {resource.get('path', '')}",
                                integration["type"], int(integration.get("timeoutInMillis") or REST_DEFAULT_TIMEOUT_MS),
                                resource_id=resource["id"], http_method=method)))
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return routes

    def _http_api_routes(self, api_id: str, api_name: str) -> list[tuple[str, ApiRoute]]:
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
        routes = []
        for integration in integrations:
            ref = function_from_uri(integration.get("IntegrationUri"), self.account, self.region)
            if ref and integration.get("IntegrationType") == "AWS_PROXY":
                keys = route_keys.get(integration["IntegrationId"]) or [f"integration {integration['IntegrationId']}"]
                routes.append((ref.arn, ApiRoute(
                    "http", api_id, api_name, ", ".join(sorted(keys)), "AWS_PROXY",
                    int(integration.get("TimeoutInMillis") or HTTP_DEFAULT_TIMEOUT_MS),
                    integration_id=integration["IntegrationId"])))
        return routes

    def _load_metrics(self, snapshots: list[FunctionSnapshot], queries: dict[str, set[MetricQuery]]) -> None:
        wanted = [(snapshot, q) for snapshot in snapshots for q in sorted(queries.get(snapshot.arn, set()), key=repr)]
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        for snapshot, query in wanted:
            snapshot.metrics[query] = None
            snapshot.loaded.add("metrics")
        by_days: dict[int, list[tuple[FunctionSnapshot, MetricQuery]]] = defaultdict(list)
        for item in wanted:
            by_days[item[1].days].append(item)
        for days, items in by_days.items():
            for start in range(0, len(items), METRIC_QUERIES_PER_CALL):
                self._metric_batch(items[start:start + METRIC_QUERIES_PER_CALL], days, now)

    def _metric_batch(self, items: list[tuple[FunctionSnapshot, MetricQuery]], days: int, now: datetime) -> None:
        requests = [{
            "Id": f"m{i}",
            "MetricStat": {"Metric": {"Namespace": q.namespace, "MetricName": q.metric,
                                      "Dimensions": [{"Name": "FunctionName", "Value": s.name}]},
                           "Period": days * 86400, "Stat": q.stat},
            "ReturnData": True,
        } for i, (s, q) in enumerate(items)]
        paginator = self.clients("cloudwatch").get_paginator("get_metric_data")
        for page in paginator.paginate(MetricDataQueries=requests, StartTime=now - timedelta(days=days),
                                       EndTime=now):
            for result in page.get("MetricDataResults", []):
                snapshot, query = items[int(result["Id"][1:])]
                values = result.get("Values") or []
                if values:
                    reduce = max if query.stat == "Maximum" else (min if query.stat == "Minimum" else None)
                    value = reduce(values) if reduce else sum(values) / len(values)
                    previous = snapshot.metrics.get(query)
                    snapshot.metrics[query] = value if previous is None or reduce is None else reduce(previous, value)

    # -- account ---------------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        """Concurrency limit and unreserved pool; ``unavailable`` says why when AWS will not tell."""
        if self._account_facts is None:
            try:
                limits = self.clients("lambda").get_account_settings().get("AccountLimit", {})
                self._account_facts = AccountFacts(limits.get("ConcurrentExecutions"),
                                                   limits.get("UnreservedConcurrentExecutions"))
            except ClientError as exc:
                reason = "GetAccountSettings is not available here" if is_unsupported(exc) else \
                    f"GetAccountSettings failed: {exc.response.get('Error', {}).get('Code', 'error')}"
                self._account_facts = AccountFacts(unavailable=reason)
        return self._account_facts

