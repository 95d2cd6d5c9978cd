"""The only place that reads AWS: functions into typed snapshots, lazily, in bulk and in parallel.

Two reading strategies, chosen by how many functions are asked for:

* one function (the event path): GetFunction (config + tags + concurrency in one call), the function's own
  event source mappings, and its API routes found through its resource policy (which APIs may invoke it);
* many functions (a sweep): ListFunctions pages, tags from the Resource Groups Tagging API, account-wide
  ListEventSourceMappings pages, every API's integrations once, metrics 500 series per GetMetricData call.

Each facet is read by one reader module (apis, metrics, lambda_reads, network, roles, triggers, logs,
packages, optimizer, autoscaling, eventbridge, chains, simulation); a reader owns its caches, and
:class:`Inventory` composes them. :data:`FACETS` says which reader reads each facet and which facets must be
read before it; :meth:`Inventory.load` reads the facets asked for at once,
each as soon as those it comes after are read, and each reader reads its items in parallel within the
scope's per-service limit (``chalicelib.core.aws.IN_FLIGHT``).

Example:
    inventory = Inventory(Clients("us-east-1"), "123456789012")
    snapshot = inventory.function(FunctionRef("orders-api", "123456789012", "us-east-1"))
    inventory.load({"routes": [snapshot]}, {})
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import Clients, describe_error, is_not_found, is_transient, named_pool, queue_depth
from chalicelib.core.model import (
    AccountFacts,
    EventSourceMapping,
    FunctionRef,
    FunctionSnapshot,
    LogSearch,
    MetricQuery,
)
from chalicelib.intake.events import Change, function_from_uri
from chalicelib.inventory.apis import ApiReader
from chalicelib.inventory.autoscaling import ScalingReader
from chalicelib.inventory.chains import ChainReader
from chalicelib.inventory.common import FEW_FUNCTIONS, ReadContext, _chunks, _unqualified, snapshot_from_config
from chalicelib.inventory.eventbridge import EventBridgeReader
from chalicelib.inventory.lambda_reads import AccountFactsCache, LambdaReader
from chalicelib.inventory.logs import LogReader
from chalicelib.inventory.metrics import PROVISIONED_METRIC, URL_METRIC, MetricReader
from chalicelib.inventory.network import NetworkReader
from chalicelib.inventory.optimizer import OptimizerReader
from chalicelib.inventory.packages import PackageReader
from chalicelib.inventory.roles import RoleReader, _role_name
from chalicelib.inventory.simulation import SimulationReader
from chalicelib.inventory.triggers import TriggerReader

__all__ = ["FACETS", "AccountFactsCache", "Facet", "FacetRequest", "Inventory", "snapshot_from_config"]

TAG_ARNS_PER_CALL = 100  # GetResources: at most 100 ARNs in ResourceARNList
FACET_THREADS = 32  # facets of every scope being read at once (each waits on its own requests)


@dataclass
class FacetRequest:
    """What one facet read gets: the snapshots that need it, whether this is a bulk (many-function) read,
    the metric series and log searches the checks asked for (by function ARN)."""

    snapshots: list[FunctionSnapshot]
    bulk: bool
    queries: dict[str, set[MetricQuery]] = field(default_factory=dict)
    searches: dict[str, LogSearch] = field(default_factory=dict)


@dataclass(frozen=True)
class Facet:
    """How one facet is read (``read(inventory, request)``), which facets must be read before it, and the
    account-wide index a sweep can read ahead, before it knows which functions need the facet (``warm``)."""

    read: Callable[[Inventory, FacetRequest], Any]
    after: frozenset[str] = frozenset()
    warm: Callable[[Inventory], Any] | None = None


# The facet order, explicit: a facet waits only for those named in its ``after``; the rest read at once.
FACETS: dict[str, Facet] = {
    "account": Facet(lambda inv, r: inv.lambdas.account_facts(), warm=lambda inv: inv.lambdas.account_facts()),
    "concurrency": Facet(lambda inv, r: inv.lambdas.load_concurrency(r.snapshots)),
    "mappings": Facet(lambda inv, r: inv.lambdas.load_mappings(r.snapshots, r.bulk),
                      warm=lambda inv: inv.lambdas.mapping_index()),
    "alarms": Facet(lambda inv, r: inv.lambdas.load_alarms(r.snapshots, r.bulk),
                    warm=lambda inv: inv.lambdas.alarm_index()),
    "recursion": Facet(lambda inv, r: inv.lambdas.load_recursion(r.snapshots)),
    "routes": Facet(lambda inv, r: inv.apis.load_routes(r.snapshots, r.bulk), warm=lambda inv: inv.apis.route_index()),
    # one function: its URL is read only when no API route fronts it, so routes come first
    "urls": Facet(lambda inv, r: inv.metrics.load_urls(r.snapshots, r.bulk), after=frozenset({"routes"}),
                  warm=lambda inv: inv.metrics.metric_index(URL_METRIC)),
    "metrics": Facet(lambda inv, r: inv.metrics.load_metrics(r.snapshots, r.queries)),
    "provisioned": Facet(lambda inv, r: inv.metrics.load_provisioned(r.snapshots, r.bulk, r.queries),
                         warm=lambda inv: inv.metrics.metric_index(PROVISIONED_METRIC)),
    "network": Facet(lambda inv, r: inv.network.load_network(r.snapshots)),
    "role_policies": Facet(lambda inv, r: inv.roles.load_role_policies(r.snapshots, r.bulk),
                           warm=lambda inv: inv.roles.warm()),
    "triggers": Facet(lambda inv, r: inv.triggers.load_triggers(r.snapshots, r.bulk),
                      warm=lambda inv: inv.triggers.warm()),
    "logs": Facet(lambda inv, r: inv.logs.load_logs(r.snapshots, r.bulk, r.searches)),
    "package": Facet(lambda inv, r: inv.packages.load_package(r.snapshots)),
    "recommendations": Facet(lambda inv, r: inv.optimizer.load_recommendations(r.snapshots, r.bulk)),
    # scalers are read for the aliases / versions the provisioned-concurrency configs name
    "scaling": Facet(lambda inv, r: inv.scaling.load_scaling(r.snapshots, r.bulk), after=frozenset({"provisioned"})),
    # loop paths end with the function's mappings; IAM is asked about the paths' first writes
    "chains": Facet(lambda inv, r: inv.chains.load_chains(r.snapshots, r.bulk), after=frozenset({"mappings"}),
                    warm=lambda inv: inv.chains.warm()),
    "iam_simulation": Facet(lambda inv, r: inv.simulation.load_iam_simulation(r.snapshots),
                            after=frozenset({"mappings", "triggers", "chains", "role_policies"})),
}

def _facets_pool() -> ThreadPoolExecutor:
    """Process-wide pool for facet reads (apart from the request pool their requests run on: no deadlock)."""
    return named_pool("facet", FACET_THREADS)


def read_in_order(tasks: Mapping[str, Callable[[], Any]], after: Mapping[str, frozenset[str]]
                  ) -> dict[str, BaseException]:
    """Run ``tasks`` in parallel, each once those named in its ``after`` (and also asked for) have ended;
    returns the exceptions by task name. A task runs even when one it comes after failed.

    Example:
        >>> done = []
        >>> read_in_order({"b": lambda: done.append("b"), "a": lambda: done.append("a")}, {"b": frozenset("a")})
        {}
        >>> done
        ['a', 'b']
    """
    pending: dict[str, Callable[[], Any]] = dict(tasks)
    running: dict[Future[Any], str] = {}
    failed: dict[str, BaseException] = {}
    while pending or running:
        unfinished = set(pending) | set(running.values())
        for name in [n for n in pending if not after.get(n, frozenset()) & unfinished]:
            running[_facets_pool().submit(pending.pop(name))] = name
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in finished:
            name = running.pop(future)
            error = future.exception()
            if error is not None:
                failed[name] = error
    return failed


class Inventory:
    """Reads one account and region by composing one reader per facet group; caches what does not change
    within a run (APIs, indexes), and account facts for a few minutes (``facts``, shared per container)."""

    lambdas: LambdaReader
    apis: ApiReader
    metrics: MetricReader
    network: NetworkReader
    roles: RoleReader
    triggers: TriggerReader
    logs: LogReader
    packages: PackageReader
    optimizer: OptimizerReader
    scaling: ScalingReader
    events: EventBridgeReader
    chains: ChainReader
    simulation: SimulationReader

    def __init__(self, clients: Clients, account: str, sleep: Callable[[float], None] = time.sleep,
                 facts: AccountFactsCache | None = None) -> None:
        self.ctx = ReadContext(clients, account, sleep)
        self.clients, self.account, self.region = clients, account, clients.region
        self.lambdas = LambdaReader(self.ctx, facts)
        self.apis = ApiReader(self.ctx)
        self.metrics = MetricReader(self.ctx)
        self.network = NetworkReader(self.ctx)
        self.roles = RoleReader(self.ctx)
        self.triggers = TriggerReader(self.ctx)
        self.logs = LogReader(self.ctx)
        self.packages = PackageReader(self.ctx)
        self.optimizer = OptimizerReader(self.ctx)
        self.scaling = ScalingReader(self.ctx)
        self.events = EventBridgeReader(self.ctx)
        self.chains = ChainReader(self.ctx, self.triggers, self.events, self.lambdas)
        self.simulation = SimulationReader(self.ctx)

    @property
    def transient_raises(self) -> bool:
        """Inside one event (``Engine.handle``) a transient read error raises, so that Lambda retries the event
        (chalicelib/core/aws.py, the one rule); a sweep records it and goes on."""
        return self.ctx.transient_raises

    @transient_raises.setter
    def transient_raises(self, value: bool) -> None:
        self.ctx.transient_raises = value

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
        if error := response.get("TagsError"):  # GetFunction allowed but lambda:ListTags not: no tags returned
            snapshot.unavailable["tags"] = f"{error.get('ErrorCode', 'error')}: {str(error.get('Message', ''))[:300]}"
        return snapshot

    def mapping(self, uuid: str) -> EventSourceMapping | None:
        """Re-read one event source mapping; None if it is gone."""
        return self.lambdas.mapping(uuid)

    def reserved_concurrency(self, ref: FunctionRef) -> int | None:
        """The function's reserved concurrency (GetFunctionConcurrency: exact, 0 included); None if unset."""
        return self.lambdas.reserved_concurrency(ref)

    def alarm(self, alarm_name: str) -> dict[str, Any] | None:
        """One metric alarm as DescribeAlarms returns it, read fresh; None when there is none."""
        return self.lambdas.alarm(alarm_name)

    def alarm_state(self, alarm_name: str) -> str | None:
        """``OK`` / ``ALARM`` / ``INSUFFICIENT_DATA`` of one metric alarm; None when there is no such alarm."""
        return self.lambdas.alarm_state(alarm_name)

    def recursion_config(self, ref: FunctionRef) -> tuple[str, str]:
        """Lambda's recursive loop setting (``Allow`` / ``Terminate``), or ``("unavailable", why)``."""
        return self.lambdas.recursion_config(ref)

    def function_mappings(self, snapshot: FunctionSnapshot) -> tuple[EventSourceMapping, ...]:
        """The function's event source mappings, read fresh (never from the run's bulk index)."""
        return self.lambdas.function_mappings(snapshot)

    def sentinel_alarms(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The sentinel alarms of the scope, by name (see ``chalicelib.killswitch.sentinel``)."""
        return self.metrics.sentinel_alarms(prefix)

    def alarm_contributors(self, alarm_name: str) -> list[dict[str, Any]]:
        """A multi-time-series alarm's contributors in ALARM, as DescribeAlarmContributors gives them."""
        return self.metrics.alarm_contributors(alarm_name)

    def metric_series(self, function_name: str, stats: list[tuple[str, str]], start: datetime, end: datetime,
                      period: int = 60) -> dict[str, dict[datetime, float]]:
        """One function's AWS/Lambda series between ``start`` and ``end``, period by period (GetMetricData)."""
        return self.metrics.metric_series(function_name, stats, start, end, period)

    def waiting_messages(self, queue_name: str) -> int | None:
        """Messages in one queue of this account and region (visible and in flight); None when there is no such
        queue. Used for the member accounts' forwarding dead-letter queue (chalicelib/org/fanout.py)."""
        return queue_depth(self.clients("sqs"), queue_name)

    def account_facts(self) -> AccountFacts:
        """Concurrency limit and unreserved pool; ``unavailable`` says why when AWS will not tell."""
        return self.lambdas.account_facts()

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        """The function's resource policy (GetPolicy, once per run); None when it has none."""
        return self.ctx.function_policy(function_arn)

    def all_functions(self) -> Iterator[FunctionSnapshot]:
        """Every function in the region with its tags (see :meth:`function_batches`)."""
        for batch in self.function_batches():
            yield from batch

    def function_batches(self, size: int = 500) -> Iterator[list[FunctionSnapshot]]:
        """Every function in the region with its tags, ``size`` at a time, read one batch ahead: while the
        caller works on a batch, the next one's ListFunctions pages are read. The tagging API's pages (100
        functions each, against ListFunctions' 50) are read meanwhile, from the start: its chain of pages is the
        shorter one, and the tags are all the sweep keeps of the functions it is not working on.

        Example:
            for batch in inventory.function_batches(500):
                engine.evaluate(batch, errors)
        """
        pages = self.clients("lambda").get_paginator("list_functions").paginate()
        configs = (config for page in pages for config in page.get("Functions", []))
        tags = _facets_pool().submit(self._all_tags)

        def next_batch() -> list[FunctionSnapshot]:
            return self._with_tags(list(itertools.islice(configs, size)), tags.result())

        ahead = _facets_pool().submit(next_batch)
        while batch := ahead.result():
            ahead = _facets_pool().submit(next_batch)
            yield batch

    def _all_tags(self) -> tuple[dict[str, dict[str, str]], str]:
        """Function ARN -> tags, and why they could not be read ('' when they were): a refused tagging API
        leaves every function's tags unknown, never empty."""
        tags: dict[str, dict[str, str]] = {}
        paginator = self.clients("resourcegroupstaggingapi").get_paginator("get_resources")
        try:
            for page in paginator.paginate(ResourceTypeFilters=["lambda:function"], ResourcesPerPage=100):
                for item in page.get("ResourceTagMappingList", []):
                    tags[_unqualified(item["ResourceARN"])] = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        except ClientError as exc:
            return {}, _tags_refused(exc)
        return tags, ""

    def _with_tags(self, configs: list[dict[str, Any]],
                   tagged: tuple[dict[str, dict[str, str]], str] | None = None) -> list[FunctionSnapshot]:
        """Snapshots of ``configs`` with their tags (``tagged``: tags and why they could not be read, else read
        here); a function whose tags could not be read is marked so, never taken as untagged."""
        if tagged is None:
            try:
                tagged = self.tags_of([_unqualified(config["FunctionArn"]) for config in configs]), ""
            except ClientError as exc:
                tagged = {}, _tags_refused(exc)
        tags, unreadable = tagged
        return [_tagged(snapshot_from_config(config, tags.get(_unqualified(config["FunctionArn"]))), unreadable)
                for config in configs]

    def tags_of(self, arns: list[str]) -> dict[str, dict[str, str]]:
        """Tags of these functions (tagging API GetResources by ResourceARNList: 100 ARNs a call, in parallel;
        a function without tags is absent)."""
        found = self.ctx.parallel("resourcegroupstaggingapi", self._tag_mappings,
                                  _chunks(sorted(set(arns)), TAG_ARNS_PER_CALL))
        return {_unqualified(item["ResourceARN"]): {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                for items in found for item in items}

    def _tag_mappings(self, arns: list[str]) -> list[dict[str, Any]]:
        """AWS answers a ResourceARNList in one page (the API takes no pagination parameter with it); moto pages
        it at 50 and returns a PaginationToken, followed here so that both are read whole."""
        client, items = self.clients("resourcegroupstaggingapi"), []
        response = client.get_resources(ResourceARNList=arns)
        items.extend(response.get("ResourceTagMappingList", []))
        while response.get("PaginationToken"):
            response = client.get_resources(PaginationToken=response["PaginationToken"])
            items.extend(response.get("ResourceTagMappingList", []))
        return items

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

    def read_ahead(self, facets: set[str]) -> None:
        """Start reading the account-wide indexes of ``facets`` now, in the background (a sweep calls this
        before it lists the functions, so the indexes are read while the functions are). A failure here is
        left to the facet read itself, which retries and reports it."""
        for facet in sorted(facets & set(FACETS)):
            warm = FACETS[facet].warm
            if warm is not None:
                _facets_pool().submit(warm, self)

    def load(self, needs: dict[str, list[FunctionSnapshot]], queries: dict[str, set[MetricQuery]],
             searches: dict[str, LogSearch] | None = None) -> dict[str, str]:
        """Read the facets the checks need, all at once in :data:`FACETS` order: ``needs`` maps a facet to the
        snapshots that need it, ``queries`` a function ARN to the metric series its checks asked for
        (``searches``: the log search its checks asked for). More than one function switches to the
        account-wide bulk reads. Returns the facets AWS would not give (facet -> reason); any other error
        is raised."""
        unknown = sorted(set(needs) - set(FACETS))
        if unknown:
            raise ValueError(f"unknown facet(s): {', '.join(unknown)}")
        bulk = len({s.arn for group in needs.values() for s in group}) > 1
        request = {facet: FacetRequest(group, bulk, queries, searches or {}) for facet, group in needs.items() if group}
        tasks = {facet: functools.partial(FACETS[facet].read, self, request[facet]) for facet in request}
        failed = read_in_order(tasks, {facet: FACETS[facet].after for facet in request})
        for exc in failed.values():
            if not isinstance(exc, (ClientError, BotoCoreError)) or (self.transient_raises and is_transient(exc)):
                raise exc
        return {facet: describe_error(exc) for facet, exc in failed.items()}

    def resolve_all(self, change: Change) -> list[FunctionRef]:
        """Every function a change concerns: those named in the event, the VPC functions behind a route
        table or NAT gateway, the functions running as a role (or as any role attaching a managed policy); else
        :meth:`resolve`'s one function.

        Example:
            inventory.resolve_all(Change("id", "CreateRoute", "aws.ec2", "123456789012", "us-east-1",
                                         "", None, ("route-table", "rtb-0a9d8c7b6e5f4a321")))
            # -> [FunctionRef(name='orders-api', account='123456789012', region='us-east-1', partition='aws')]
        """
        kind, *args = change.lookup or ("",)
        if kind in API_HINTS and args and args[0]:  # the API the event names is read for its functions' routes
            self.apis.hint(args[0], API_HINTS[kind])
        if kind == "downstream":  # an S3 notification: the functions it names, and those its queues... reach
            found = list(change.functions)
            return found + [ref for ref in self.chains.functions_downstream(args[0], args[1:]) if ref not in found]
        if kind in LOOP_EDGE_LOOKUPS or kind in API_LOOKUPS:
            return self._resolve_edge(kind, args)
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
            elif kind == "internet-gateway":  # deleted: AWS may still describe it (its attachments), else every VPC
                vpcs = {a.get("VpcId", "") for g in ec2.describe_internet_gateways(
                    Filters=[{"Name": "internet-gateway-id", "Values": args[:1]}]).get("InternetGateways", [])
                    for a in g.get("Attachments", [])} or None
            elif kind == "role":
                return self._functions_running_as({args[0]})
            elif kind == "policy":
                return self._functions_running_as(self.roles.roles_attaching(args[0]))
            else:
                ref = self.resolve(change)
                return [ref] if ref else []
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return self._functions_in_vpcs(vpcs)

    def _resolve_edge(self, kind: str, args: list[str]) -> list[FunctionRef]:
        """The functions behind a loop edge (``delivery`` ARNs, an EventBridge ``rule``, a ``pipe``) or an API
        written whole (``rest-api`` / ``http-api``): functions named, and those queues and topics lead to."""
        try:
            if kind in API_LOOKUPS:
                return self.apis.functions_of_api(args[0], http=kind == "http-api")
            if kind == "rule":
                bus, name = args[0].rsplit("event-bus/", 1)[-1], args[1]
                path = name if bus == "default" else f"{bus}/{name}"
                arn = f"arn:aws:events:{self.region}:{self.account}:rule/{path}"  # the rule reader's ARN form
                args = [hop.target_arn for hop in self.events.rule_deliveries({arn})]
            elif kind == "pipe":
                args = [hop.target_arn for hop in self.events.pipe_deliveries() if hop.id.endswith(f":pipe/{args[0]}")]
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        found = [ref for a in args if ":function:" in a for ref in [FunctionRef.parse(a, self.account, self.region)]
                 if ref]
        onward = [a for a in args if ":sqs:" in a or ":sns:" in a]
        return list(dict.fromkeys(found + (self.chains.functions_downstream("", onward) if onward else [])))

    def _functions_running_as(self, roles: set[str]) -> list[FunctionRef]:
        """The region's functions whose execution role is one of ``roles`` (names)."""
        return [ref for config in self._function_configs() if _role_name(config.get("Role", "")) in roles
                for ref in [FunctionRef.parse(config["FunctionArn"], self.account, self.region)] if ref]

    def _functions_in_vpcs(self, vpcs: set[str] | None) -> list[FunctionRef]:
        configs = [c for c in self._function_configs() if (c.get("VpcConfig") or {}).get("SubnetIds")]
        if any(not c["VpcConfig"].get("VpcId") for c in configs):
            self.network.describe_subnets({sid for c in configs for sid in c["VpcConfig"]["SubnetIds"]})
        refs = []
        for config in configs:
            vpc = config["VpcConfig"].get("VpcId") or next(
                (self.ctx.shared.subnets[s].get("VpcId") for s in config["VpcConfig"]["SubnetIds"]
                 if self.ctx.shared.subnets.get(s)), "")
            ref = FunctionRef.parse(config["FunctionArn"], self.account, self.region)
            if ref and vpc and (vpcs is None or vpc in vpcs):
                refs.append(ref)
        return refs

    def _function_configs(self) -> list[dict[str, Any]]:
        shared = self.ctx.shared
        if shared.configs is None:
            pages = self.clients("lambda").get_paginator("list_functions").paginate()
            shared.configs = [config for page in pages for config in page.get("Functions", [])]
        return shared.configs

    def functions(self, refs: list[FunctionRef]) -> list[FunctionSnapshot]:
        """Re-read several functions: GetFunction each for a few, the listing and tagging API for more."""
        if len(refs) <= FEW_FUNCTIONS:
            return [s for s in (self.function(ref) for ref in refs) if s is not None]
        wanted = {ref.arn for ref in refs}
        return self._with_tags([c for c in self._function_configs() if _unqualified(c["FunctionArn"]) in wanted])


LOOP_EDGE_LOOKUPS = ("delivery", "rule", "pipe")
API_LOOKUPS = ("rest-api", "http-api")
API_HINTS = {"rest-api": "rest", "rest-integration": "rest", "http-api": "v2", "http-integration": "v2"}


def _tags_refused(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"tag:GetResources: {error.get('Code', 'error')}: {str(error.get('Message', ''))[:300]}"


def _tagged(snapshot: FunctionSnapshot, unreadable: str) -> FunctionSnapshot:
    """Mark the snapshot's tags as read, or as unreadable with the reason."""
    snapshot.loaded.add("tags")
    if unreadable:
        snapshot.unavailable["tags"] = unreadable
    return snapshot

