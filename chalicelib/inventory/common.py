"""What the inventory's readers share: snapshot building, small helpers, the per-run caches."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws import Clients
from chalicelib.model import (
    ApiRoute,
    EventSourceMapping,
    FunctionRef,
    FunctionSnapshot,
    Layer,
    MemoryRecommendation,
    RolePolicy,
    Scaler,
    Trigger,
)

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


def snapshot_from_config(config: dict[str, Any], tags: dict[str, str] | None = None) -> FunctionSnapshot:
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
        snapstart=str((config.get("SnapStart") or {}).get("ApplyOn") or "None"),
        efs=bool(config.get("FileSystemConfigs")),
        revision_id=str(config.get("RevisionId") or ""),
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


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _custom_log_group(config: dict[str, Any]) -> str:
    group = str((config.get("LoggingConfig") or {}).get("LogGroup") or "")
    name = str(config.get("FunctionName") or "")
    return "" if group == f"{DEFAULT_LOG_PREFIX}{name}" else group


@dataclass
class VpcResources:
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InventoryCaches:
    """What the network / IAM / trigger / log reads keep for the run (many functions share a VPC, a role,
    a bucket)."""

    policies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpcs: dict[str, VpcResources] = field(default_factory=dict)
    roles: dict[str, tuple[RolePolicy, ...] | None] = field(default_factory=dict)
    managed: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorization_read: bool = False
    buckets: dict[str, list[Trigger]] = field(default_factory=dict)
    all_buckets_read: bool = False
    unreadable_buckets: set[str] = field(default_factory=set)
    all_subscriptions: list[Trigger] | None = None
    topics: dict[str, list[Trigger]] = field(default_factory=dict)
    rules: dict[str, list[Trigger]] = field(default_factory=dict)  # rule ARN -> its deliveries
    all_rules_read: bool = False
    pipes: list[Trigger] | None = None
    resource_policies: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # queue / topic policies
    delivery_index: dict[str, list[Trigger]] | None = None  # target -> what delivers into it (a sweep)
    chain_gaps: set[str] = field(default_factory=set)  # what could not be read while following loop paths
    simulation_unavailable: str = ""  # why IAM's policy simulator could not be asked, once it failed
    log_groups: set[str] = field(default_factory=set)
    log_prefixes_read: set[str] = field(default_factory=set)
    configs: list[dict[str, Any]] | None = None
    layer_sizes: dict[str, tuple[int | None, str]] = field(default_factory=dict)
    recommendations: dict[str, MemoryRecommendation] | None = None
    recommendations_unavailable: str = ""
    scalers: dict[str, Scaler] | None = None


class ReaderBase:
    """What every reader mixin relies on; :class:`chalicelib.inventory.Inventory` sets all of it in
    ``__init__``: the clients, the scope, the per-run caches, and the effects a reader needs beyond AWS
    calls (``sleep`` while a Logs Insights query runs)."""

    clients: Clients
    account: str
    region: str
    sleep: Callable[[float], None]
    _extra: InventoryCaches
    _route_index: dict[str, list[ApiRoute]] | None
    _mapping_index: dict[str, list[EventSourceMapping]] | None
    _alarm_index: dict[str, dict[str, Any]] | None
    _metric_index: dict[str, dict[str, set[str]]]
    _provisioned_unavailable: str
    transient_raises: bool

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        """The function's resource policy (see :meth:`chalicelib.inventory.Inventory.function_policy`)."""
        raise NotImplementedError

