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

import dataclasses
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional
from urllib.parse import unquote

from botocore.exceptions import ClientError

from chalicelib import alarms
from chalicelib.aws import Clients, error_code, is_not_found, is_unsupported
from chalicelib.events import Change, function_from_uri
from chalicelib.model import (EACH_PROVISIONED, AccountFacts, ApiRoute, EventSourceMapping, FunctionRef,
                              FunctionSnapshot, Layer, MetricQuery, ProvisionedConfig)
from chalicelib.model import (IntegrationResponse, LogHits, LogSearch, NatGateway, NetworkFacts, RolePolicy, Route,
                              SubnetRouting, Trigger, VpcEndpoint)

REST_DEFAULT_TIMEOUT_MS = 29000
HTTP_DEFAULT_TIMEOUT_MS = 30000
METRIC_QUERIES_PER_CALL = 500
# ListMetrics lists series with data in the last two weeks: the sweep's bulk way to find which functions
# have provisioned concurrency serving requests, and which have a function URL serving requests.
PROVISIONED_METRIC = "ProvisionedConcurrentExecutions"
URL_METRIC = "UrlRequestCount"
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
        architectures=tuple(config.get("Architectures") or ("x86_64",)),
        custom_log_group=_custom_log_group(config),
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
        self._alarm_index: Optional[dict[str, dict[str, Any]]] = None
        self._metric_index: dict[str, dict[str, set[str]]] = {}
        self._provisioned_unavailable = ""
        self._extra = InventoryCaches()

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

    def load(self, needs: dict[str, list[FunctionSnapshot]], queries: dict[str, set[MetricQuery]],
             searches: Optional[dict[str, LogSearch]] = None) -> None:
        """Read the facets the checks need: ``needs`` maps a facet to the snapshots that need it and
        ``queries`` a function ARN to the metric series its checks asked for (``searches``: the log
        search its checks asked for). More than one function switches to the account-wide bulk reads."""
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
        if needs.get("alarms"):
            self._load_alarms(needs["alarms"], bulk)
        if needs.get("urls"):
            self._load_urls(needs["urls"], bulk)
        if needs.get("provisioned"):
            self._load_provisioned(needs["provisioned"], bulk, queries)
        self._load_issue3_facets(needs, bulk, searches or {})

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
        policy = self.function_policy(snapshot.arn)
        if policy is None:
            return {}
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
                                resource_id=resource["id"], http_method=method,
                                responses=_integration_responses(integration))))
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
        wanted = [(snapshot, q) for snapshot in snapshots for q in sorted(queries.get(snapshot.arn, set()), key=repr)
                  if not q.qualifier]  # per alias / version series are read with the provisioned facet
        for snapshot, query in wanted:
            snapshot.metrics[query] = None
            snapshot.loaded.add("metrics")
        self._read_metrics(wanted)

    def _read_metrics(self, wanted: list[tuple[FunctionSnapshot, MetricQuery]]) -> None:
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
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
                                      "Dimensions": _dimensions(s, q)},
                           "Period": days * 86400, "Stat": q.stat},
            "ReturnData": True,
        } for i, (s, q) in enumerate(items)]
        paginator = self.clients("cloudwatch").get_paginator("get_metric_data")
        collected: dict[int, list[float]] = defaultdict(list)  # a series' values may span pages
        for page in paginator.paginate(MetricDataQueries=requests, StartTime=now - timedelta(days=days),
                                       EndTime=now):
            for result in page.get("MetricDataResults", []):
                collected[int(result["Id"][1:])].extend(result.get("Values") or [])
        for index, values in collected.items():
            if values:
                snapshot, query = items[index]
                snapshot.metrics[query] = _reduce(query.stat, values)

    def metric_index(self, metric: str) -> dict[str, set[str]]:
        """Functions with ``metric`` series in AWS/Lambda over the last two weeks (ListMetrics, read once per
        run): function name -> the qualifiers seen in the ``Resource`` dimension."""
        if metric not in self._metric_index:
            self._metric_index[metric] = self._list_metrics(metric)
        return self._metric_index[metric]

    def _list_metrics(self, metric: str, function_name: str = "") -> dict[str, set[str]]:
        dimensions = [{"Name": "FunctionName", "Value": function_name}] if function_name else []
        pages = self.clients("cloudwatch").get_paginator("list_metrics").paginate(
            Namespace="AWS/Lambda", MetricName=metric, Dimensions=dimensions)
        return _qualifiers([item for page in pages for item in page.get("Metrics", [])])

    def _load_urls(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """Function URLs. A sweep: the functions whose URL served requests (one ListMetrics for all). One
        function: its URL configs, read only when no API route fronts it already (the engine loads facets in
        name order, so ``routes`` is known here; if it were not, the URL would just be read)."""
        served = self.metric_index(URL_METRIC) if bulk else {}
        for snapshot in snapshots:
            if bulk:
                snapshot.function_url = "function URL" if snapshot.name in served else ""
            elif not snapshot.routes:
                snapshot.function_url = self._read_function_url(snapshot)
            snapshot.loaded.add("urls")

    def _read_function_url(self, snapshot: FunctionSnapshot) -> str:
        client = self.clients("lambda")
        try:
            configs = [c for page in client.get_paginator("list_function_url_configs").paginate(
                FunctionName=snapshot.arn) for c in page.get("FunctionUrlConfigs", [])]
            return str(configs[0]["FunctionUrl"]) if configs else ""
        except ClientError as exc:
            if is_not_found(exc):
                return ""
            if not is_unsupported(exc):
                raise
        try:  # where ListFunctionUrlConfigs is missing: the unqualified URL only
            return str(client.get_function_url_config(FunctionName=snapshot.arn)["FunctionUrl"])
        except ClientError as exc:
            if is_not_found(exc):
                return ""
            raise

    def _load_provisioned(self, snapshots: list[FunctionSnapshot], bulk: bool,
                          queries: dict[str, set[MetricQuery]]) -> None:
        """Provisioned-concurrency configs, then the per alias / version metrics checks asked for. A sweep
        reads configs only of functions whose provisioned concurrency served requests (ListMetrics)."""
        in_use = self.metric_index(PROVISIONED_METRIC) if bulk else None
        wanted: list[tuple[FunctionSnapshot, MetricQuery]] = []
        for snapshot in snapshots:
            if in_use is not None and snapshot.name not in in_use:
                snapshot.provisioned, snapshot.provisioned_note = (), "none served requests in the last 14 days"
            else:
                self._read_provisioned(snapshot, in_use)
            snapshot.loaded.add("provisioned")
            for query in queries.get(snapshot.arn, set()):
                if query.qualifier == EACH_PROVISIONED:
                    for config in snapshot.provisioned:
                        concrete = dataclasses.replace(query, qualifier=config.qualifier)
                        snapshot.metrics[concrete] = None
                        wanted.append((snapshot, concrete))
        self._read_metrics(wanted)

    def _read_provisioned(self, snapshot: FunctionSnapshot, in_use: Optional[dict[str, set[str]]]) -> None:
        """ListProvisionedConcurrencyConfigs; where it is unavailable, the qualifiers CloudWatch shows with
        provisioned-concurrency metrics (sizes unknown), and ``provisioned_note`` says so."""
        if not self._provisioned_unavailable:
            try:
                pages = self.clients("lambda").get_paginator("list_provisioned_concurrency_configs").paginate(
                    FunctionName=snapshot.arn)
                snapshot.provisioned = tuple(_provisioned(item) for page in pages
                                             for item in page.get("ProvisionedConcurrencyConfigs", []))
                snapshot.provisioned_note = "read from ListProvisionedConcurrencyConfigs"
                return
            except ClientError as exc:
                if is_not_found(exc):
                    snapshot.provisioned, snapshot.provisioned_note = (), "the function is gone"
                    return
                if not is_unsupported(exc):
                    raise
                self._provisioned_unavailable = "unavailable: ListProvisionedConcurrencyConfigs is not supported here"
        seen = in_use if in_use is not None else self._list_metrics(PROVISIONED_METRIC, snapshot.name)
        snapshot.provisioned = tuple(ProvisionedConfig(q) for q in sorted(seen.get(snapshot.name, ())))
        snapshot.provisioned_note = self._provisioned_unavailable

    # -- runaway alarms and the kill-switch's reads ------------------------------------------------

    def _load_alarms(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        index = self.alarm_index() if bulk else self._read_alarms(AlarmNames=[alarms.alarm_name(snapshots[0].name)])
        for snapshot in snapshots:
            snapshot.alarm = index.get(snapshot.name)
            snapshot.loaded.add("alarms")

    def alarm_index(self) -> dict[str, dict[str, Any]]:
        """Every managed runaway alarm in the region (one DescribeAlarms by prefix), by function name."""
        if self._alarm_index is None:
            self._alarm_index = self._read_alarms(AlarmNamePrefix=alarms.PREFIX)
        return self._alarm_index

    def _read_alarms(self, **selector: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        paginator = self.clients("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"], **selector):
            for alarm in page.get("MetricAlarms", []):
                name = alarms.function_of_alarm(alarm.get("AlarmName"))
                if name:
                    found[name] = alarms.put_arguments(alarm)
        return found

    def alarm_state(self, alarm_name: str) -> Optional[str]:
        """``OK`` / ``ALARM`` / ``INSUFFICIENT_DATA`` of one metric alarm; None when there is no such alarm."""
        found = self.clients("cloudwatch").describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
        return next((str(a.get("StateValue")) for a in found.get("MetricAlarms", [])), None)

    def reserved_concurrency(self, ref: FunctionRef) -> Optional[int]:
        """The function's reserved concurrency now (GetFunctionConcurrency), None when it has none."""
        response = self.clients("lambda").get_function_concurrency(FunctionName=ref.arn)
        value = response.get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    def recursion_config(self, ref: FunctionRef) -> tuple[str, str]:
        """Lambda's recursive loop setting (``Allow`` / ``Terminate``), or ``("unavailable", why)``."""
        try:
            value = self.clients("lambda").get_function_recursion_config(FunctionName=ref.arn).get("RecursiveLoop")
        except ClientError as exc:
            why = "GetFunctionRecursionConfig is not available here" if is_unsupported(exc) else \
                f"GetFunctionRecursionConfig failed: {error_code(exc) or 'error'}"
            return "unavailable", why
        if value not in ("Allow", "Terminate"):
            return "unavailable", f"unexpected RecursiveLoop value {str(value)[:40]!r}"
        return str(value), ""

    def function_mappings(self, snapshot: FunctionSnapshot) -> tuple[EventSourceMapping, ...]:
        """The function's event source mappings, read fresh (never from the run's bulk index)."""
        snapshot.mappings = tuple(self._read_mappings(snapshot.name).get(snapshot.arn, ()))
        snapshot.loaded.add("mappings")
        return snapshot.mappings

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


    # -- network, role policies, triggers, logs, recursion (vpc-no-egress, recursive-trigger, tmp-storage) --

    def function_policy(self, function_arn: str) -> Optional[dict[str, Any]]:
        """The function's resource policy (GetPolicy, once per run); None when it has none."""
        cache = self._extra.policies
        if function_arn not in cache:
            try:
                cache[function_arn] = json.loads(self.clients("lambda").get_policy(FunctionName=function_arn)["Policy"])
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                cache[function_arn] = None
        return cache[function_arn]

    def _load_issue3_facets(self, needs: dict[str, list[FunctionSnapshot]], bulk: bool,
                            searches: dict[str, LogSearch]) -> None:
        if needs.get("network"):
            self._load_network(needs["network"])
        if needs.get("role_policies"):
            self._load_role_policies(needs["role_policies"], bulk)
        if needs.get("triggers"):
            self._load_triggers(needs["triggers"], bulk)
        if needs.get("logs"):
            self._load_logs(needs["logs"], bulk, searches)
        for snapshot in needs.get("recursion", []):
            self._load_recursion(snapshot)

    # network: DescribeSubnets, then per VPC in play route tables, NAT gateways and endpoints (once per run)

    def _load_network(self, snapshots: list[FunctionSnapshot]) -> None:
        self._describe_subnets({sid for s in snapshots for sid in s.subnet_ids})
        self._describe_vpcs({self._extra.subnets[sid]["VpcId"] for s in snapshots for sid in s.subnet_ids
                             if self._extra.subnets.get(sid)})
        for snapshot in snapshots:
            snapshot.network = self._network_facts(snapshot)
            snapshot.loaded.add("network")

    def _describe_subnets(self, subnet_ids: set[str]) -> None:
        wanted = sorted(subnet_ids - set(self._extra.subnets))
        paginator = self.clients("ec2").get_paginator("describe_subnets")
        for chunk in _chunks(wanted, EC2_FILTER_VALUES):
            for sid in chunk:
                self._extra.subnets[sid] = {}
            for page in paginator.paginate(Filters=[{"Name": "subnet-id", "Values": chunk}]):
                for subnet in page.get("Subnets", []):
                    self._extra.subnets[subnet["SubnetId"]] = subnet

    def _describe_vpcs(self, vpc_ids: set[str]) -> None:
        wanted = sorted(vpc_ids - set(self._extra.vpcs))
        ec2 = self.clients("ec2")
        for chunk in _chunks(wanted, EC2_FILTER_VALUES):
            found: dict[str, VpcResources] = {vpc: VpcResources() for vpc in chunk}
            by_vpc = [{"Name": "vpc-id", "Values": chunk}]
            for page in ec2.get_paginator("describe_route_tables").paginate(Filters=by_vpc):
                for table in page.get("RouteTables", []):
                    found.setdefault(table["VpcId"], VpcResources()).route_tables.append(table)
            for page in ec2.get_paginator("describe_nat_gateways").paginate(Filter=by_vpc):
                for nat in page.get("NatGateways", []):
                    found.setdefault(nat.get("VpcId", ""), VpcResources()).nat_gateways.append(nat)
            for page in ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=by_vpc):
                for endpoint in page.get("VpcEndpoints", []):
                    found.setdefault(endpoint.get("VpcId", ""), VpcResources()).endpoints.append(endpoint)
            self._extra.vpcs.update(found)

    def _network_facts(self, snapshot: FunctionSnapshot) -> NetworkFacts:
        vpc, subnets, missing = snapshot.vpc_id, [], []
        for sid in snapshot.subnet_ids:
            subnet = self._extra.subnets.get(sid)
            if not subnet:
                missing.append(sid)
                continue
            vpc = subnet["VpcId"]
            table = _route_table_of(sid, self._extra.vpcs.get(vpc, VpcResources()).route_tables)
            subnets.append(SubnetRouting(sid, vpc, table.get("RouteTableId", ""), _is_main(table), _routes(table)))
        resources = self._extra.vpcs.get(vpc, VpcResources())
        nats = tuple(NatGateway(n["NatGatewayId"], n.get("State", ""), n.get("ConnectivityType") or "public",
                                _has_internet_route(_route_table_of(n.get("SubnetId", ""), resources.route_tables)))
                     for n in resources.nat_gateways)
        endpoints = tuple(VpcEndpoint(e["VpcEndpointId"], _service_short_name(e.get("ServiceName", "")),
                                      e.get("VpcEndpointType") or "Gateway", tuple(e.get("RouteTableIds") or ()))
                          for e in resources.endpoints if str(e.get("State", "available")).lower() == "available")
        return NetworkFacts(vpc, tuple(subnets), nats, endpoints, tuple(missing))

    # role policies: GetAccountAuthorizationDetails for a sweep, the role's own policies for one function

    def _load_role_policies(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        if bulk and not self._extra.authorization_read:
            self._read_authorization_details()
        for snapshot in snapshots:
            name = _role_name(snapshot.role)
            if name not in self._extra.roles:
                self._extra.roles[name] = None if self._extra.authorization_read else self._read_role(name)
            policies = self._extra.roles[name]
            if policies is None:
                snapshot.unavailable["role_policies"] = f"execution role {name or snapshot.role!r} not found"
            snapshot.role_policies = policies or ()
            snapshot.loaded.add("role_policies")

    def _read_authorization_details(self) -> None:
        roles: list[dict[str, Any]] = []
        pages = self.clients("iam").get_paginator("get_account_authorization_details").paginate(
            Filter=["Role", "LocalManagedPolicy"])
        for page in pages:
            roles.extend(page.get("RoleDetailList", []))
            for policy in page.get("Policies", []):
                default = next((v for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")), {})
                self._extra.managed[policy["Arn"]] = _document(default.get("Document"))
        for role in roles:
            inline = tuple(RolePolicy(p["PolicyName"], "inline", _document(p.get("PolicyDocument")))
                           for p in role.get("RolePolicyList", []))
            self._extra.roles[role["RoleName"]] = inline + tuple(
                self._managed_policy(a["PolicyArn"], a.get("PolicyName", "")) for a in role.get("AttachedManagedPolicies", []))
        self._extra.authorization_read = True

    def _read_role(self, name: str) -> Optional[tuple[RolePolicy, ...]]:
        iam = self.clients("iam")
        try:
            names = [n for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                     for n in page.get("PolicyNames", [])]
            inline = tuple(RolePolicy(n, "inline", _document(iam.get_role_policy(RoleName=name, PolicyName=n)
                                                              .get("PolicyDocument"))) for n in names)
            attached = [a for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                        for a in page.get("AttachedPolicies", [])]
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return inline + tuple(self._managed_policy(a["PolicyArn"], a.get("PolicyName", "")) for a in attached)

    def _managed_policy(self, arn: str, name: str) -> RolePolicy:
        if arn not in self._extra.managed:
            iam = self.clients("iam")
            try:
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"].get("Document")
                self._extra.managed[arn] = _document(document)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                self._extra.managed[arn] = {}
        return RolePolicy(name or arn.rsplit("/", 1)[-1], arn, self._extra.managed[arn])

    # triggers: S3 bucket notifications and SNS subscriptions that invoke the function

    def _load_triggers(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        if bulk:
            s3, sns = self._bucket_triggers(None), self._subscription_triggers(None)
        for snapshot in snapshots:
            if not bulk:
                policy = self.function_policy(snapshot.arn) or {}
                s3 = self._bucket_triggers(_invoke_sources(policy, "s3.amazonaws.com"))
                sns = self._subscription_triggers(_invoke_sources(policy, "sns.amazonaws.com"))
            snapshot.triggers = tuple(s3.get(snapshot.arn, ())) + tuple(sns.get(snapshot.arn, ()))
            if self._extra.unreadable_buckets:
                snapshot.unavailable["triggers"] = ("notifications unreadable for bucket(s) "
                                                    + ", ".join(sorted(self._extra.unreadable_buckets)[:5]))
            snapshot.loaded.add("triggers")

    def _bucket_triggers(self, sources: Optional[set[str]]) -> dict[str, list[Trigger]]:
        """Function ARN → its S3 triggers, over ``sources`` (bucket ARNs) or, with None, every bucket of the
        region (ListBuckets, then one GetBucketNotificationConfiguration per bucket, once per run)."""
        if sources is None:
            if not self._extra.all_buckets_read:
                pages = self.clients("s3").get_paginator("list_buckets").paginate(BucketRegion=self.region)
                for bucket in (b for page in pages for b in page.get("Buckets", [])):
                    if bucket.get("BucketRegion", self.region) == self.region and bucket["Name"] not in self._extra.buckets:
                        self._read_bucket(bucket["Name"])
                self._extra.all_buckets_read = True
            names = set(self._extra.buckets)
        else:
            names = {arn.split(":::", 1)[1].split("/", 1)[0] for arn in sources if arn.startswith("arn:aws")
                     and ":s3:::" in arn}
            for name in sorted(names - set(self._extra.buckets)):
                self._read_bucket(name)
        index: dict[str, list[Trigger]] = defaultdict(list)
        for name in sorted(names):
            for function_arn, trigger in self._extra.buckets.get(name, []):
                index[function_arn].append(trigger)
        return index

    def _read_bucket(self, name: str) -> None:
        try:
            config = self.clients("s3").get_bucket_notification_configuration(Bucket=name)
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchBucket", "404"):
                self._extra.unreadable_buckets.add(f"{name} ({error_code(exc) or 'error'})")
            self._extra.buckets[name] = []
            return
        found = []
        for item in config.get("LambdaFunctionConfigurations", []):
            rules = {str(r.get("Name", "")).lower(): str(r.get("Value", ""))
                     for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])}
            found.append((_unqualified(item.get("LambdaFunctionArn", "")), Trigger(
                "s3", f"arn:aws:s3:::{name}", tuple(item.get("Events", [])), rules.get("prefix", ""),
                rules.get("suffix", ""), item.get("Id", ""))))
        self._extra.buckets[name] = found

    def _subscription_triggers(self, sources: Optional[set[str]]) -> dict[str, list[Trigger]]:
        """Function ARN → its SNS subscriptions: ListSubscriptions once per run, or the named topics only."""
        sns = self.clients("sns")
        if sources is None:
            if self._extra.all_subscriptions is None:
                index: dict[str, list[Trigger]] = defaultdict(list)
                for page in sns.get_paginator("list_subscriptions").paginate():
                    for function_arn, trigger in _lambda_subscriptions(page.get("Subscriptions", [])):
                        index[function_arn].append(trigger)
                self._extra.all_subscriptions = index
            return self._extra.all_subscriptions
        index = defaultdict(list)
        for topic in sorted(t for t in sources if t.split(":")[3:4] == [self.region]):
            if topic not in self._extra.topics:
                try:
                    subs = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                            for s in page.get("Subscriptions", [])]
                except ClientError as exc:
                    if not is_not_found(exc):
                        raise
                    subs = []
                self._extra.topics[topic] = _lambda_subscriptions(subs)
            for function_arn, trigger in self._extra.topics[topic]:
                index[function_arn].append(trigger)
        return index

    # logs: one Logs Insights query per 50 log groups for a sweep, FilterLogEvents for one function

    def _load_logs(self, snapshots: list[FunctionSnapshot], bulk: bool, searches: dict[str, LogSearch]) -> None:
        by_search: dict[LogSearch, list[FunctionSnapshot]] = defaultdict(list)
        for snapshot in snapshots:
            search = searches.get(snapshot.arn)
            if search:
                by_search[search].append(snapshot)
            snapshot.loaded.add("logs")
        for search, group in by_search.items():
            if bulk:
                self._insights(group, search)
            else:
                for snapshot in group:
                    self._filter_log_events(snapshot, search)

    def _filter_log_events(self, snapshot: FunctionSnapshot, search: LogSearch) -> None:
        now_ms = int(time.time() * 1000)
        request: dict[str, Any] = {"logGroupName": snapshot.log_group, "startTime": now_ms - search.hours * 3600000,
                                   "filterPattern": " ".join(f'?"{p}"' for p in search.patterns)}
        count, last = 0, 0
        try:
            for _ in range(MAX_FILTER_PAGES):
                page = self.clients("logs").filter_log_events(**request)
                for event in page.get("events", []):
                    if _mentions(event.get("message", ""), search.patterns):
                        count, last = count + 1, max(last, int(event.get("timestamp", 0)))
                request["nextToken"] = page.get("nextToken")
                if count or not request["nextToken"]:
                    break
            else:
                snapshot.unavailable["logs"] = f"searched the first {MAX_FILTER_PAGES} pages of {snapshot.log_group} only"
        except ClientError as exc:
            if not is_not_found(exc):
                raise
        snapshot.log_hits = LogHits(count, last, snapshot.log_group)

    def _insights(self, snapshots: list[FunctionSnapshot], search: LogSearch) -> None:
        logs = self.clients("logs")
        existing = self._existing_log_groups({s.log_group for s in snapshots})
        groups = sorted({s.log_group for s in snapshots} & existing)
        end = int(time.time()) + 60
        query = _insights_query(search.patterns)
        hits: dict[str, tuple[int, int]] = {}
        failed: dict[str, str] = {}
        started = [(chunk, logs.start_query(logGroupNames=chunk, startTime=end - 60 - search.hours * 3600,
                                            endTime=end, queryString=query, limit=10000)["queryId"])
                   for chunk in _chunks(groups, INSIGHTS_MAX_GROUPS)]
        deadline = time.monotonic() + INSIGHTS_WAIT_S
        for chunk, query_id in started:
            while True:
                result = logs.get_query_results(queryId=query_id)
                status = result.get("status", "")
                if status not in ("Scheduled", "Running") or time.monotonic() > deadline:
                    break
                self.sleep(INSIGHTS_POLL_S)
            if status != "Complete":
                failed.update({g: f"Logs Insights query {status or 'did not finish'}" for g in chunk})
            for row in result.get("results", []):
                _add_insights_row(hits, row, search.patterns)
        for snapshot in snapshots:
            if snapshot.log_group in failed:
                snapshot.unavailable["logs"] = failed[snapshot.log_group]
            snapshot.log_hits = LogHits(*hits.get(snapshot.log_group, (0, 0)), snapshot.log_group)

    def _existing_log_groups(self, groups: set[str]) -> set[str]:
        """Which of ``groups`` exist (a query naming a missing group fails): the /aws/lambda/ prefix is
        listed once per run, other groups by their own prefix."""
        paginator = self.clients("logs").get_paginator("describe_log_groups")
        prefixes = {DEFAULT_LOG_PREFIX} if any(g.startswith(DEFAULT_LOG_PREFIX) for g in groups) else set()
        prefixes |= {g for g in groups if not g.startswith(DEFAULT_LOG_PREFIX)}
        for prefix in sorted(prefixes - self._extra.log_prefixes_read):
            for page in paginator.paginate(logGroupNamePrefix=prefix):
                self._extra.log_groups.update(g["logGroupName"] for g in page.get("logGroups", []))
            self._extra.log_prefixes_read.add(prefix)
        return groups & self._extra.log_groups

    sleep = staticmethod(time.sleep)

    # recursion: GetFunctionRecursionConfig (per function; AWS has no bulk read)

    def _load_recursion(self, snapshot: FunctionSnapshot) -> None:
        if "recursion" in snapshot.loaded:
            return
        try:
            response = self.clients("lambda").get_function_recursion_config(FunctionName=snapshot.arn)
            snapshot.recursive_loop = response.get("RecursiveLoop")
        except ClientError as exc:
            if not is_unsupported(exc) and error_code(exc) != "AccessDeniedException":
                raise
            snapshot.unavailable["recursion"] = ("GetFunctionRecursionConfig is not available here"
                                                 if is_unsupported(exc) else "GetFunctionRecursionConfig was denied")
        snapshot.loaded.add("recursion")

    # events about several functions: a route table, a NAT gateway, a role

    def resolve_all(self, change: Change) -> list[FunctionRef]:
        """Every function a change concerns: those named in the event, the VPC functions behind a route
        table or NAT gateway, the functions running as a role; else :meth:`resolve`'s one function.

        Example:
            >>> inventory.resolve_all(Change("id", "CreateRoute", "aws.ec2", "123456789012", "us-east-1",
            ...                              "", None, ("route-table", "rtb-0a9d8c7b6e5f4a321")))
            [FunctionRef(name='orders-api', account='123456789012', region='us-east-1', partition='aws')]
        """
        if change.functions:
            return list(change.functions)
        kind, *args = change.lookup or ("",)
        ec2 = self.clients("ec2")
        try:
            if kind == "route-table":
                vpcs: Optional[set[str]] = {t["VpcId"] for t in ec2.describe_route_tables(
                    Filters=[{"Name": "route-table-id", "Values": args[:1]}]).get("RouteTables", [])}
            elif kind == "nat-gateway":
                vpcs = {n.get("VpcId", "") for n in ec2.describe_nat_gateways(
                    Filter=[{"Name": "nat-gateway-id", "Values": args[:1]}]).get("NatGateways", [])}
            elif kind == "vpc":
                vpcs = set(args) or None
            elif kind == "role":
                return [ref for config in self._function_configs() if _role_name(config.get("Role", "")) == args[0]
                        for ref in [FunctionRef.parse(config["FunctionArn"], self.account, self.region)] if ref]
            else:
                ref = self.resolve(change)
                return [ref] if ref else []
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return self._functions_in_vpcs(vpcs)

    def _functions_in_vpcs(self, vpcs: Optional[set[str]]) -> list[FunctionRef]:
        configs = [c for c in self._function_configs() if (c.get("VpcConfig") or {}).get("SubnetIds")]
        if any(not c["VpcConfig"].get("VpcId") for c in configs):
            self._describe_subnets({sid for c in configs for sid in c["VpcConfig"]["SubnetIds"]})
        refs = []
        for config in configs:
            vpc = config["VpcConfig"].get("VpcId") or next(
                (self._extra.subnets[s].get("VpcId") for s in config["VpcConfig"]["SubnetIds"]
                 if self._extra.subnets.get(s)), "")
            ref = FunctionRef.parse(config["FunctionArn"], self.account, self.region)
            if ref and vpc and (vpcs is None or vpc in vpcs):
                refs.append(ref)
        return refs

    def _function_configs(self) -> list[dict[str, Any]]:
        if self._extra.configs is None:
            pages = self.clients("lambda").get_paginator("list_functions").paginate()
            self._extra.configs = [config for page in pages for config in page.get("Functions", [])]
        return self._extra.configs

    def functions(self, refs: list[FunctionRef]) -> list[FunctionSnapshot]:
        """Re-read several functions: GetFunction each for a few, the listing and tagging API for more."""
        if len(refs) <= FEW_FUNCTIONS:
            return [s for s in (self.function(ref) for ref in refs) if s is not None]
        wanted, tags = {ref.arn for ref in refs}, self._all_tags()
        snapshots = []
        for config in self._function_configs():
            arn = _unqualified(config["FunctionArn"])
            if arn in wanted:
                snapshot = snapshot_from_config(config, tags.get(arn))
                snapshot.loaded.add("tags")
                snapshots.append(snapshot)
        return snapshots


EC2_FILTER_VALUES = 200
MAX_FILTER_PAGES = 10
INSIGHTS_MAX_GROUPS = 50
INSIGHTS_WAIT_S = 60.0
INSIGHTS_POLL_S = 1.0
FEW_FUNCTIONS = 3
DEFAULT_LOG_PREFIX = "/aws/lambda/"
_ROUTE_TARGETS = ("NatGatewayId", "TransitGatewayId", "NetworkInterfaceId", "InstanceId", "GatewayId",
                  "VpcPeeringConnectionId", "LocalGatewayId", "CarrierGatewayId", "EgressOnlyInternetGatewayId",
                  "CoreNetworkArn")
_ACCOUNT_PREFIX = re.compile(r"^\d{12}:")


@dataclass
class VpcResources:
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InventoryCaches:
    """What the network / IAM / trigger / log reads keep for the run (many functions share a VPC, a role,
    a bucket)."""

    policies: dict[str, Optional[dict[str, Any]]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpcs: dict[str, VpcResources] = field(default_factory=dict)
    roles: dict[str, Optional[tuple[RolePolicy, ...]]] = field(default_factory=dict)
    managed: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorization_read: bool = False
    buckets: dict[str, list[tuple[str, Trigger]]] = field(default_factory=dict)
    all_buckets_read: bool = False
    unreadable_buckets: set[str] = field(default_factory=set)
    all_subscriptions: Optional[dict[str, list[Trigger]]] = None
    topics: dict[str, list[tuple[str, Trigger]]] = field(default_factory=dict)
    log_groups: set[str] = field(default_factory=set)
    log_prefixes_read: set[str] = field(default_factory=set)
    configs: Optional[list[dict[str, Any]]] = None


def _custom_log_group(config: dict[str, Any]) -> str:
    group = str((config.get("LoggingConfig") or {}).get("LogGroup") or "")
    name = str(config.get("FunctionName") or "")
    return "" if group == f"{DEFAULT_LOG_PREFIX}{name}" else group


def _integration_responses(integration: dict[str, Any]) -> tuple[IntegrationResponse, ...]:
    return tuple(IntegrationResponse(str(r.get("statusCode") or code), str(r.get("selectionPattern") or ""))
                 for code, r in sorted((integration.get("integrationResponses") or {}).items()))


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _route_table_of(subnet_id: str, tables: list[dict[str, Any]]) -> dict[str, Any]:
    """The subnet's explicitly associated route table, else the VPC's main table."""
    for table in tables:
        if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
            return table
    return next((t for t in tables if _is_main(t)), {})


def _is_main(table: dict[str, Any]) -> bool:
    return any(a.get("Main") for a in table.get("Associations", []))


def _routes(table: dict[str, Any]) -> tuple[Route, ...]:
    routes = []
    for route in table.get("Routes", []):
        destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or \
            route.get("DestinationPrefixListId") or ""
        target = next((str(route[k]) for k in _ROUTE_TARGETS if route.get(k)), "")
        routes.append(Route(destination, target, route.get("State", "active")))
    return tuple(routes)


def _has_internet_route(table: dict[str, Any]) -> bool:
    return any(r.destination == "0.0.0.0/0" and r.target.startswith("igw-") and r.state == "active"
               for r in _routes(table))


def _service_short_name(service: str) -> str:
    """``com.amazonaws.us-east-1.secretsmanager`` → ``secretsmanager``."""
    return re.sub(r"^(?:[a-z0-9-]+\.)*?(?:com\.amazonaws|amazonaws\.com)\.(?:[a-z]{2}(?:-[a-z]+)+-\d\.)?", "", service)


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1] if ":role/" in role_arn else ""


def _document(document: Any) -> dict[str, Any]:
    """A policy document as a dict (boto3 decodes IAM documents; a URL-encoded string is accepted too)."""
    if isinstance(document, dict):
        return document
    if isinstance(document, str):
        for text in (document, unquote(document)):
            try:
                parsed = json.loads(text)
                return parsed if isinstance(parsed, dict) else {}
            except ValueError:
                continue
    return {}


def _invoke_sources(policy: dict[str, Any], service: str) -> Optional[set[str]]:
    """The SourceArns a resource policy lets ``service`` invoke the function from; None when a statement
    allows the service without naming its source (then every source must be read)."""
    sources: set[str] = set()
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        named = principal.get("Service") if isinstance(principal, dict) else principal
        if statement.get("Effect") != "Allow" or service not in json.dumps(named):
            continue
        found = [v for op in (statement.get("Condition") or {}).values() if isinstance(op, dict)
                 for k, v in op.items() if k.lower() == "aws:sourcearn"]
        if not found:
            return None
        for value in found:
            sources.update(str(v) for v in (value if isinstance(value, list) else [value]))
    if any("*" in s or "?" in s for s in sources):
        return None
    return sources


def _lambda_subscriptions(subscriptions: list[dict[str, Any]]) -> list[tuple[str, Trigger]]:
    return [(_unqualified(s.get("Endpoint", "")), Trigger("sns", s.get("TopicArn", ""), id=s.get("SubscriptionArn", "")))
            for s in subscriptions if s.get("Protocol") == "lambda"]


def _mentions(message: str, patterns: tuple[str, ...]) -> bool:
    lowered = message.lower()
    return any(p.lower() in lowered for p in patterns)


def _insights_query(patterns: tuple[str, ...]) -> str:
    """``fields`` first (moto, which runs no ``filter``/``stats``, then returns the raw lines, checked here)."""
    regex = "|".join(re.escape(p).replace("/", "\\/") for p in patterns)
    return (f"fields @timestamp, @log, @message | filter @message like /(?i)({regex})/ "
            f"| stats count(*) as hits, max(@timestamp) as last by @log")


def _add_insights_row(hits: dict[str, tuple[int, int]], row: list[dict[str, str]], patterns: tuple[str, ...]) -> None:
    fields = {f.get("field", ""): f.get("value", "") for f in row}
    group = _ACCOUNT_PREFIX.sub("", fields.get("@log", ""))
    if "hits" in fields:
        count, last = int(float(fields["hits"] or 0)), _timestamp_ms(fields.get("last", ""))
    elif _mentions(fields.get("@message", ""), patterns):
        count, last = 1, _timestamp_ms(fields.get("@timestamp", ""))
    else:
        return
    before = hits.get(group, (0, 0))
    hits[group] = (before[0] + count, max(before[1], last))


def _timestamp_ms(value: str) -> int:
    """Insights timestamps: epoch milliseconds, or ``2025-06-10 14:02:37.412`` (UTC)."""
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.strptime(value[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() * 1000)
    except ValueError:
        return 0


def _dimensions(snapshot: FunctionSnapshot, query: MetricQuery) -> list[dict[str, str]]:
    """CloudWatch dimensions of a function's series; an alias / version adds ``Resource`` = ``name:qualifier``."""
    dimensions = [{"Name": "FunctionName", "Value": snapshot.name}]
    if query.qualifier:
        dimensions.append({"Name": "Resource", "Value": f"{snapshot.name}:{query.qualifier}"})
    return dimensions


def _reduce(stat: str, values: list[float]) -> float:
    """Combine one series' datapoints over the look-back as its statistic says."""
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat in ("Sum", "SampleCount"):
        return sum(values)
    return sum(values) / len(values)


def _provisioned(item: dict[str, Any]) -> ProvisionedConfig:
    def count(key: str) -> Optional[int]:
        return int(item[key]) if item.get(key) is not None else None

    return ProvisionedConfig(
        qualifier=str(item.get("FunctionArn", "")).rsplit(":", 1)[-1],
        requested=count("RequestedProvisionedConcurrentExecutions"),
        allocated=count("AllocatedProvisionedConcurrentExecutions"),
        status=str(item.get("Status", "")), last_modified=str(item.get("LastModified", "")))


def _qualifiers(metrics: list[dict[str, Any]]) -> dict[str, set[str]]:
    """ListMetrics items -> function name -> the qualifiers of its ``Resource`` dimension (``name:qualifier``)."""
    found: dict[str, set[str]] = defaultdict(set)
    for item in metrics:
        dims = {d["Name"]: d["Value"] for d in item.get("Dimensions", [])}
        if "FunctionName" in dims:
            resource = dims.get("Resource", "")
            found[dims["FunctionName"]].update([resource.split(":", 1)[1]] if ":" in resource else [])
    return dict(found)
