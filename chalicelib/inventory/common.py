"""What the inventory's readers share: snapshot building, small helpers, the read context (clients, scope,
shared caches, bounded parallel reads)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.core.aws import Clients, is_not_found
from chalicelib.core.model import EventSourceMapping, FunctionRef, FunctionSnapshot, Layer
from chalicelib.core.quotas import DEFAULT_SHARE, INSIGHTS_CONCURRENT_QUERIES

T = TypeVar("T")
R = TypeVar("R")
_UNSET = object()

EC2_FILTER_VALUES = 200
MAX_FILTER_PAGES = 10
INSIGHTS_MAX_GROUPS = 50  # log groups per StartQuery (botocore: logGroupNames holds up to 50)
# Concurrent Logs Insights queries per account: the bot's share (max_quota_share) of the account's quota, dashboards'
# queries included (chalicelib/core/quotas.py: 100 on the current Logs pages); beyond it AWS answers
# LimitExceededException.
INSIGHTS_MAX_CONCURRENT = int(DEFAULT_SHARE * INSIGHTS_CONCURRENT_QUERIES)
INSIGHTS_WAIT_S = 60.0  # waiting for a free query slot while none of ours runs, for the whole search
INSIGHTS_QUERY_WAIT_S = 60.0  # each query's own budget from its start: then it is stopped (StopQuery), not left running
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
        revision_id=str(config.get("RevisionId") or ""),
        snapstart=str((config.get("SnapStart") or {}).get("ApplyOn") or "None"),
        efs=bool(config.get("FileSystemConfigs")),
        env_error=_env_error(config),
        kms_key_arn=str(config.get("KMSKeyArn") or ""),
        last_modified=str(config.get("LastModified") or ""),
    )


def _env_error(config: dict[str, Any]) -> str:
    """``Environment.Error`` ("<ErrorCode>: <Message>"): the variables were not returned to this caller.

    Example:
        >>> _env_error({"Environment": {"Error": {"ErrorCode": "AccessDeniedException", "Message": "KMS denied"}}})
        'AccessDeniedException: KMS denied'
    """
    error = (config.get("Environment") or {}).get("Error")
    if not isinstance(error, dict):
        return ""
    return f"{error.get('ErrorCode') or 'Error'}: {str(error.get('Message') or '')[:300]}".rstrip(": ")


def _mapping(item: dict[str, Any]) -> EventSourceMapping:
    return EventSourceMapping(
        uuid=item["UUID"], source_arn=item.get("EventSourceArn", ""), function_arn=item.get("FunctionArn", ""),
        batch_size=int(item.get("BatchSize") or 0), response_types=tuple(item.get("FunctionResponseTypes") or ()),
        state=item.get("State", ""),
        filters=tuple(str(f.get("Pattern") or "") for f in (item.get("FilterCriteria") or {}).get("Filters") or []),
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
class SharedCaches:
    """What more than one reader (or the inventory itself) keeps for the run (function resource policies are
    kept by :meth:`ReadContext.function_policy`): subnets (network facts and the VPC functions of a change) and the
    account's function configurations. Each reader keeps its own caches itself."""

    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: list[dict[str, Any]] | None = None


class ReadContext:
    """What every facet reader is built with: the scope's clients (and its bounded parallel reads), the
    scope, the shared per-run caches, and the effects a reader needs beyond AWS calls (``sleep`` while a
    Logs Insights query runs). Readers are composed by :class:`chalicelib.inventory.Inventory`, each
    owning its own caches; they reach each other only through the inventory's facet order."""

    def __init__(self, clients: Clients, account: str, sleep: Callable[[float], None]) -> None:
        self.clients = clients
        self.account = account
        self.region = clients.region
        self.sleep = sleep
        self.shared = SharedCaches()
        self.transient_raises = False  # inside one event (Engine.handle): a transient read error raises
        self._lock = threading.Lock()
        self._once: dict[str, list[Any]] = {}

    def once(self, key: str, build: Callable[[], R]) -> R:
        """``build()`` once per run for ``key`` (an account-wide index): a caller that comes while another
        builds it waits for that build instead of reading AWS again; a failed build is retried by the next.

        Example:
            >>> ctx = ReadContext(Clients("us-east-1"), "123456789012", sleep=lambda s: None)
            >>> [ctx.once("index", lambda: len(ctx._once)) for _ in range(2)]
            [1, 1]
        """
        with self._lock:
            entry = self._once.setdefault(key, [threading.Lock(), _UNSET])
        with entry[0]:
            if entry[1] is _UNSET:
                entry[1] = build()
            return entry[1]

    def parallel(self, service: str, read: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Read ``items`` in parallel within the scope's limit for ``service`` (see ``Clients.parallel``)."""
        return self.clients.parallel(service, read, items)

    def function_policy(self, function_arn: str) -> dict[str, Any] | None:
        """The function's resource policy (GetPolicy, once per run, also when two facets ask at the same time);
        None when it has none."""
        def read() -> dict[str, Any] | None:
            try:
                return json.loads(self.clients("lambda").get_policy(FunctionName=function_arn)["Policy"])
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                return None

        return self.once(f"function-policy#{function_arn}", read)


class Reader:
    """A facet reader: built with the scope's :class:`ReadContext`, it owns its own caches. Readers are
    composed by :class:`chalicelib.inventory.Inventory` (never mixed into it), which runs them in the
    explicit facet order of ``chalicelib.inventory.FACETS``."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx

    @property
    def clients(self) -> Clients:
        return self.ctx.clients

    @property
    def account(self) -> str:
        return self.ctx.account

    @property
    def region(self) -> str:
        return self.ctx.region
