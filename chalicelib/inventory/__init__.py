"""The only place that reads AWS: functions into typed snapshots, lazily and in bulk.

Two reading strategies, chosen by how many functions are asked for:

* one function (the event path): GetFunction (config + tags + concurrency in one call), the function's own
  event source mappings, and its API routes found through its resource policy (which APIs may invoke it);
* many functions (a sweep): ListFunctions pages, tags from the Resource Groups Tagging API, account-wide
  ListEventSourceMappings pages, every API's integrations once, metrics 500 series per GetMetricData call.

Example:
    inventory = Inventory(Clients("us-east-1"), "123456789012")
    snapshot = inventory.function(FunctionRef("orders-api", "123456789012", "us-east-1"))
    inventory.load({"routes": [snapshot]}, {})

The readers of each facet live in their own module (apis, metrics, lambda_reads, network, roles, triggers,
eventbridge, chains, simulation, logs, packages, optimizer, autoscaling); :class:`Inventory` combines them (ChainReader
walks through the trigger, EventBridge and Lambda readers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import Clients, is_not_found, is_transient, is_unsupported
from chalicelib.events import Change, function_from_uri
from chalicelib.inventory.apis import ApiReader
from chalicelib.inventory.autoscaling import ScalingReader
from chalicelib.inventory.chains import ChainReader
from chalicelib.inventory.common import FEW_FUNCTIONS, InventoryCaches, _mapping, _unqualified, snapshot_from_config
from chalicelib.inventory.logs import LogReader
from chalicelib.inventory.metrics import MetricReader
from chalicelib.inventory.network import NetworkReader
from chalicelib.inventory.optimizer import OptimizerReader
from chalicelib.inventory.packages import PackageReader
from chalicelib.inventory.roles import RoleReader, _role_name
from chalicelib.inventory.simulation import SimulationReader
from chalicelib.model import (
    AccountFacts,
    EventSourceMapping,
    FunctionRef,
    FunctionSnapshot,
    LogSearch,
    MetricQuery,
)

__all__ = ["Inventory", "snapshot_from_config"]


class Inventory(ApiReader, MetricReader, ChainReader, NetworkReader, RoleReader, LogReader, PackageReader,
                OptimizerReader, ScalingReader, SimulationReader):
    """Reads one account and region. Caches what does not change within a run (APIs, account facts)."""

    def __init__(self, clients: Clients, account: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.clients = clients
        self.account = account
        self.region = clients.region
        self.sleep = sleep
        self._account_facts: AccountFacts | None = None
        self._route_index = None
        self._mapping_index = None
        self._alarm_index = None
        self._metric_index = {}
        self._provisioned_unavailable = ""
        self._extra = InventoryCaches()
        self.transient_raises = False  # inside one event (Engine.handle): a transient read error raises

    def function(self, ref: FunctionRef) -> FunctionSnapshot | None:
        """Re-read one function (config, tags and reserved concurrency in one call); None if it is gone."""
        try:
            response = self.clients("lambda").get_function(FunctionName=ref.arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        snapshot = snapshot_from_config(response["Configuration"], response.get("Tags"))
        snapshot.reserved_concurrency = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        snapshot.image_uri = str((response.get("Code") or {}).get("ImageUri", ""))
        snapshot.resolved_image_uri = str((response.get("Code") or {}).get("ResolvedImageUri", ""))
        snapshot.loaded.update({"tags", "concurrency"})
        return snapshot

    def mapping(self, uuid: str) -> EventSourceMapping | None:
        """Re-read one event source mapping; None if it is gone."""
        try:
            return _mapping(self.clients("lambda").get_event_source_mapping(UUID=uuid))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def reserved_concurrency(self, ref: FunctionRef) -> int | None:
        """The function's reserved concurrency (GetFunctionConcurrency: exact, 0 included); None if unset."""
        value = (
            self.clients("lambda").get_function_concurrency(FunctionName=ref.arn).get("ReservedConcurrentExecutions")
        )
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

    def resolve(self, change: Change) -> FunctionRef | None:
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

    def load(self, needs: dict[str, list[FunctionSnapshot]], queries: dict[str, set[MetricQuery]],
             searches: dict[str, LogSearch] | None = None) -> None:
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
        self._load_infrastructure_facets(needs, bulk, searches or {})

    def account_facts(self) -> AccountFacts:
        """Concurrency limit and unreserved pool; ``unavailable`` says why when AWS will not tell."""
        if self._account_facts is None:
            try:
                limits = self.clients("lambda").get_account_settings().get("AccountLimit", {})
                self._account_facts = AccountFacts(limits.get("ConcurrentExecutions"),
                                                   limits.get("UnreservedConcurrentExecutions"))
            except ClientError as exc:
                if self.transient_raises and is_transient(exc):
                    raise
                reason = "GetAccountSettings is not available here" if is_unsupported(exc) else \
                    f"GetAccountSettings failed: {exc.response.get('Error', {}).get('Code', 'error')}"
                self._account_facts = AccountFacts(unavailable=reason)
        return self._account_facts

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
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

    def _load_infrastructure_facets(self, needs: dict[str, list[FunctionSnapshot]], bulk: bool,
                            searches: dict[str, LogSearch]) -> None:
        if needs.get("network"):
            self._load_network(needs["network"])
        if needs.get("role_policies"):
            self._load_role_policies(needs["role_policies"], bulk)
        if needs.get("triggers"):
            self._load_triggers(needs["triggers"], bulk)
        if needs.get("chains"):
            self._load_chains(needs["chains"], bulk)
        if needs.get("iam_simulation"):
            self._load_iam_simulation(needs["iam_simulation"])
        if needs.get("logs"):
            self._load_logs(needs["logs"], bulk, searches)
        for snapshot in needs.get("recursion", []):
            self._load_recursion(snapshot)
        if needs.get("package"):
            self._load_package(needs["package"])
        if needs.get("recommendations"):
            self._load_recommendations(needs["recommendations"], bulk)
        if needs.get("scaling"):
            self._load_scaling(needs["scaling"], bulk)

    def resolve_all(self, change: Change) -> list[FunctionRef]:
        """Every function a change concerns: those named in the event, the VPC functions behind a route
        table or NAT gateway, the functions running as a role; else :meth:`resolve`'s one function.

        Example:
            inventory.resolve_all(Change("id", "CreateRoute", "aws.ec2", "123456789012", "us-east-1",
                                         "", None, ("route-table", "rtb-0a9d8c7b6e5f4a321")))
            # -> [FunctionRef(name='orders-api', account='123456789012', region='us-east-1', partition='aws')]
        """
        kind, *args = change.lookup or ("",)
        if kind == "downstream":  # an S3 notification: the functions it names, and those its queues... reach
            found = list(change.functions)
            return found + [ref for ref in self.functions_downstream(args[0], args[1:]) if ref not in found]
        if change.functions:
            return list(change.functions)
        ec2 = self.clients("ec2")
        try:
            if kind == "route-table":
                vpcs: set[str] | None = {t["VpcId"] for t in ec2.describe_route_tables(
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

    def _functions_in_vpcs(self, vpcs: set[str] | None) -> list[FunctionRef]:
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

