"""Typed values that flow through the bot: function snapshots in, findings and decisions out.

Nothing here talks to AWS. ``inventory`` builds snapshots, ``checks`` turn them into findings and
``engine`` turns findings into decisions.

Example:
    >>> ref = FunctionRef.parse("123456789012:function:orders-api:live", "999999999999", "us-east-1")
    >>> ref.arn
    'arn:aws:lambda:us-east-1:123456789012:function:orders-api'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

MB = 1024 * 1024  # sizes: MB of 1,048,576 bytes, as the Lambda console and CLI show them
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
MODES: tuple[str, ...] = ("auto", "approve", "notify", "off")
GLOBAL_MODES: tuple[str, ...] = ("enforce", "dry-run", "off")
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,140}$")
_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,140})(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_PARTIAL_ARN = re.compile(
    r"^(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]{1,140})(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_NAME_WITH_QUALIFIER = re.compile(r"^(?P<name>[A-Za-z0-9_-]{1,140}):(?P<qualifier>[A-Za-z0-9$_-]+)$")


def severity_rank(severity: str) -> int:
    """Order severities: ``severity_rank("high") > severity_rank("low")``."""
    return SEVERITIES.index(severity)


def effective_severity(found: str, configured: str) -> str:
    """The policy's configured severity, unless the check itself found less at stake (a check may lower its
    finding's severity, never raise it above what the operator configured).

    Example:
        >>> effective_severity("", "high"), effective_severity("low", "high"), effective_severity("critical", "high")
        ('high', 'low', 'high')
    """
    if found in SEVERITIES and severity_rank(found) < severity_rank(configured):
        return found
    return configured


@dataclass(frozen=True)
class FunctionRef:
    """An unqualified Lambda function identity (qualifiers are dropped: config lives on $LATEST)."""

    name: str
    account: str
    region: str
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    @classmethod
    def parse(cls, text: Any, account: str, region: str) -> FunctionRef | None:
        """Parse every form AWS accepts for ``FunctionName``; None when it is not one.

        Example:
            >>> FunctionRef.parse("orders-api", "123456789012", "us-east-1").name
            'orders-api'
        """
        if not isinstance(text, str) or len(text) > 256:
            return None
        if m := _ARN.match(text):
            return cls(m["name"], m["account"], m["region"], m["partition"])
        if m := _PARTIAL_ARN.match(text):
            return cls(m["name"], m["account"], region)
        if m := _NAME_WITH_QUALIFIER.match(text):
            return cls(m["name"], account, region)
        if _FUNCTION_NAME.match(text):
            return cls(text, account, region)
        return None


@dataclass(frozen=True)
class Layer:
    arn: str
    code_size: int


@dataclass(frozen=True)
class EventSourceMapping:
    """One event source mapping of a function (as ListEventSourceMappings returns it)."""

    uuid: str
    source_arn: str
    function_arn: str
    batch_size: int
    response_types: tuple[str, ...]
    state: str
    filters: tuple[str, ...] = ()  # FilterCriteria patterns (JSON text): a record no pattern matches is dropped

    @property
    def source_kind(self) -> str:
        """``sqs``, ``kinesis``, ``dynamodb`` (streams), ``kafka``, ``mq`` or ``other``."""
        service = self.source_arn.split(":")[2] if self.source_arn.count(":") >= 2 else ""
        return {"sqs": "sqs", "kinesis": "kinesis", "dynamodb": "dynamodb", "kafka": "kafka",
                "mq": "mq"}.get(service, "other")

    @property
    def source_name(self) -> str:
        """The queue's, stream's or table's name (a DynamoDB stream is named after its table, not its label).

        Example:
            >>> EventSourceMapping("u", "arn:aws:dynamodb:us-east-1:1:table/Audit/stream/2024-01-01T00:00:00.000",
            ...                    "", 100, (), "Enabled").source_name
            'Audit'
        """
        resource = self.source_arn.split(":", 5)[-1] if self.source_arn.count(":") >= 5 else self.source_arn
        if self.source_kind == "dynamodb" and resource.startswith("table/"):
            return resource.split("/")[1]
        if self.source_kind == "kinesis" and resource.startswith("stream/"):
            return resource.split("/")[1]
        return self.source_arn.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class ApiRoute:
    """An API Gateway integration whose target is the function.

    ``kind`` is ``rest`` (API Gateway v1), ``http`` (HTTP API, v2) or ``websocket`` (WebSocket API, v2).
    ``timeout_ms`` is the integration timeout, with AWS's default filled in when the integration does not set
    one. ``invocation`` says whether API Gateway waits for the function: ``sync`` (it does, up to the
    integration timeout), ``async`` (``X-Amz-Invocation-Type: 'Event'``: it answers at once), ``stream``
    (``responseTransferMode: STREAM``: it streams for up to 15 minutes) or ``caller`` (the request chooses).
    """

    kind: Literal["rest", "http", "websocket"]
    api_id: str
    api_name: str
    route: str
    integration_type: str
    timeout_ms: int
    resource_id: str = ""
    http_method: str = ""
    integration_id: str = ""
    responses: tuple[IntegrationResponse, ...] = ()
    # the alias or version the integration invokes: "" the unqualified function ($LATEST), None not known (templates)
    qualifier: str | None = None
    invocation: Literal["sync", "async", "stream", "caller"] = "sync"
    via_role: bool = False  # API Gateway invokes through an invocation role (the integration's credentials)

    @property
    def api_kind(self) -> str:
        """How messages name the API: ``REST API``, ``HTTP API`` or ``WebSocket API``."""
        return API_KINDS.get(self.kind, "API")

    @property
    def waited(self) -> bool:
        """True when API Gateway holds the client until the function answers (or may: ``caller``)."""
        return self.invocation in ("sync", "caller")


API_KINDS = {"rest": "REST API", "http": "HTTP API", "websocket": "WebSocket API"}
INVOCATION_HEADER = "integration.request.header.X-Amz-Invocation-Type"


def invocation_mode(request_parameters: Any, transfer_mode: Any = None, uri: Any = None,
                    ) -> Literal["sync", "async", "stream", "caller"]:
    """Whether API Gateway waits for a Lambda integration, from what the integration states (one copy of the
    rule for the live reader and the template readers).

    Example:
        >>> invocation_mode({"integration.request.header.X-Amz-Invocation-Type": "'Event'"})
        'async'
        >>> invocation_mode({}, "STREAM"), invocation_mode(None, None, "arn:...:functions/f/invocations")
        ('stream', 'sync')
        >>> invocation_mode({"integration.request.header.X-Amz-Invocation-Type": "method.request.header.t"})
        'caller'
    """
    if str(transfer_mode or "").upper() == "STREAM" or str(uri or "").endswith("/response-streaming-invocations"):
        return "stream"
    params = request_parameters if isinstance(request_parameters, dict) else {}
    value = next((v for k, v in params.items() if str(k).lower() == INVOCATION_HEADER.lower()), None)
    if value is None:
        return "sync"
    literal = str(value).strip()
    if literal.startswith("'") and literal.endswith("'") and len(literal) >= 2:
        return "async" if literal.strip("'").strip().lower() == "event" else "sync"
    return "caller"


_QUALIFIED = re.compile(r":function:[^:/]+:([^:/]+)")


def uri_qualifier(uri: Any) -> str:
    """The alias or version an API integration URI (REST invocation URI or bare ARN) invokes; "" for none, which
    Lambda runs as $LATEST.

    Example:
        >>> uri_qualifier("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        ...               "arn:aws:lambda:us-east-1:123456789012:function:orders:live/invocations")
        'live'
        >>> uri_qualifier("arn:aws:lambda:us-east-1:123456789012:function:orders")
        ''
    """
    match = _QUALIFIED.search(uri) if isinstance(uri, str) else None
    return "" if not match or match[1] == "$LATEST" else match[1]


@dataclass(frozen=True)
class MetricQuery:
    """One CloudWatch statistic of one function over a look-back window (the key of ``metrics``)."""

    metric: str
    stat: str
    days: int
    namespace: str = "AWS/Lambda"
    qualifier: str = ""  # an alias / version (the ``Resource`` dimension); EACH_PROVISIONED: every PC one
    period: int = 0  # 0: the statistic over the whole window; else seconds: the busiest such period's statistic
    lag_days: int = 0  # the window ends this many days ago (a baseline that leaves out what is happening now)


# A check asks for a metric of every alias / version with provisioned concurrency with this qualifier;
# inventory expands it once the provisioned-concurrency configs are read.
EACH_PROVISIONED = "*"


@dataclass(frozen=True)
class ProvisionedConfig:
    """Provisioned concurrency on one alias or version. Counts are None when AWS would not say
    (the configs API unavailable: only the metrics showed the qualifier has provisioned concurrency)."""

    qualifier: str
    requested: int | None = None
    allocated: int | None = None
    status: str = ""
    last_modified: str = ""


@dataclass(frozen=True)
class IntegrationResponse:
    """One integration response of a REST API method: ``pattern`` '' is the default response."""

    status: str
    pattern: str = ""


@dataclass(frozen=True)
class Route:
    """One route of a VPC route table: ``target`` is the gateway / NAT / ENI / peering id (or ``local``)."""

    destination: str
    target: str
    state: str = "active"


@dataclass(frozen=True)
class SubnetRouting:
    """The route table a subnet uses: its explicit association, else the VPC's main table (``main``)."""

    subnet_id: str
    vpc_id: str
    route_table_id: str
    main: bool
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class NatGateway:
    """A NAT gateway as far as egress goes: only an available public NAT with an internet route gives one."""

    id: str
    state: str
    connectivity: str = "public"
    internet_route: bool = True


@dataclass(frozen=True)
class VpcEndpoint:
    """A VPC endpoint: ``service`` is the short name (``s3``, ``secretsmanager``); gateway endpoints only
    serve the route tables they are attached to."""

    id: str
    service: str
    kind: str
    route_table_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkFacts:
    """What decides a VPC function's egress: the routing of each of its subnets, NATs and endpoints."""

    vpc_id: str
    subnets: tuple[SubnetRouting, ...] = ()
    nat_gateways: tuple[NatGateway, ...] = ()
    endpoints: tuple[VpcEndpoint, ...] = ()
    missing_subnets: tuple[str, ...] = ()


UNREAD_POLICY = "unread"  # a RolePolicy source: a policy whose content could not be read (a template's managed one)


@dataclass(frozen=True)
class RolePolicy:
    """One identity policy of the execution role: ``source`` is ``inline``, the managed policy ARN, or
    ``UNREAD_POLICY`` when its content is unknown (an empty document)."""

    name: str
    source: str
    document: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Trigger:
    """One delivery AWS makes on its own, from ``source_arn`` to ``target_arn`` ('' means the function itself).

    ``kind`` names the delivering service: ``s3`` (a bucket notification: ``events``, key ``prefix`` /
    ``suffix``; to a function, a queue, a topic, or the default event bus), ``sns`` (a subscription, to a
    function or a queue), ``sqs`` / ``kinesis`` / ``dynamodb`` (an event source mapping from a queue or a
    stream), ``events`` (an EventBridge rule on the bus ``source_arn``, ``id`` the rule's ARN, ``pattern`` its
    event pattern) or ``pipe`` (an EventBridge pipe from a queue or a stream)."""

    kind: Literal["s3", "sns", "sqs", "kinesis", "dynamodb", "events", "pipe"]
    source_arn: str
    events: tuple[str, ...] = ()
    prefix: str = ""
    suffix: str = ""
    id: str = ""
    target_arn: str = ""
    pattern: str = ""

    @property
    def source_name(self) -> str:
        return self.source_arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


# A loop's path is bounded: the function writes to the first resource, and at most this many deliveries
# (the last one invoking the function) follow: ``writes s3://b/ → topic t → queue q → triggers f`` is three.
MAX_TRIGGER_HOPS = 3


@dataclass(frozen=True)
class IamDecision:
    """IAM's own answer (SimulatePrincipalPolicy) for one write of a possible loop: ``decision`` is
    ``allowed`` / ``explicitDeny`` / ``implicitDeny``; ``blocked_by`` names a permissions boundary or an SCP
    that denies it; ``missing_context`` lists condition keys the simulator had no value for."""

    decision: str
    blocked_by: str = ""
    missing_context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scaler:
    """Application Auto Scaling on one alias / version's provisioned concurrency: the scalable target's
    bounds, its scaling policies (name, type, target value) and scheduled actions (name, schedule)."""

    qualifier: str
    min_capacity: int
    max_capacity: int
    policies: tuple[tuple[str, str, float | None], ...] = ()
    schedules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MemoryRecommendation:
    """AWS Compute Optimizer's recommendation for the function: ``finding`` (Optimized / NotOptimized /
    Unavailable), its reasons, the top-ranked memory size and its estimated monthly saving (USD; None when
    Compute Optimizer gives none)."""

    finding: str
    reasons: tuple[str, ...] = ()
    memory_mb: int | None = None
    monthly_savings_usd: float | None = None
    savings_percent: float | None = None
    lookback_days: float | None = None
    performance_risk: str = ""


@dataclass(frozen=True)
class LogSearch:
    """What a check wants found in function logs: any of ``patterns`` (plain text, case-insensitive)
    within the last ``hours``."""

    patterns: tuple[str, ...]
    hours: int


@dataclass(frozen=True)
class LogHits:
    """Matches of the tmp-storage patterns in the function's log group over the look-back window."""

    count: int
    last_seen_ms: int = 0
    log_group: str = ""


@dataclass
class AccountFacts:
    """Account-wide numbers some checks need; None where AWS would not tell us."""

    concurrency_limit: int | None = None
    unreserved_concurrency: int | None = None
    unavailable: str = ""


@dataclass
class FunctionSnapshot:
    """What safetycatch knows about one function, read fresh from AWS.

    The base fields come from the function configuration. Facets (``concurrency``, ``mappings``,
    ``routes``, ``metrics``, ``urls``, ``provisioned``, ``alarms``) are read only when an enabled check
    needs them; ``loaded`` says which are. ``alarm`` is the function's managed runaway alarm as
    PutMetricAlarm arguments (None: none). ``flagged_by`` holds the policy ids that already found something
    on the function in this evaluation (checks declaring ``after`` read it, e.g. runaway-loop after
    recursive-trigger).
    """

    ref: FunctionRef
    runtime: str = ""
    memory_mb: int = 128
    timeout_s: int = 3
    code_size: int = 0
    layers: tuple[Layer, ...] = ()
    role: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict, repr=False)
    vpc_id: str = ""
    subnet_ids: tuple[str, ...] = ()
    ephemeral_mb: int = 512
    package_type: str = "Zip"
    reserved_concurrency: int | None = None
    mappings: tuple[EventSourceMapping, ...] = ()
    routes: tuple[ApiRoute, ...] = ()
    metrics: dict[MetricQuery, float | None] = field(default_factory=dict)
    alarm: dict[str, Any] | None = None
    flagged_by: set[str] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    architectures: tuple[str, ...] = ("x86_64",)
    function_url: str = ""  # the URL; in a sweep "function URL" when CloudWatch shows it serves requests
    provisioned: tuple[ProvisionedConfig, ...] = ()
    provisioned_note: str = ""  # how ``provisioned`` was read, or why it could not be
    # Facets of vpc-no-egress, recursive-trigger and tmp-storage (read by inventory only when needed).
    custom_log_group: str = ""
    network: NetworkFacts | None = None
    role_policies: tuple[RolePolicy, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    # Paths of two or more deliveries ending at the function (``writes`` → hop → ... → function), head first.
    chains: tuple[tuple[Trigger, ...], ...] = ()
    # IAM's answer per (resource written, actions) of a possible loop (the ``iam_simulation`` facet).
    iam_decisions: dict[tuple[str, tuple[str, ...]], IamDecision] = field(default_factory=dict)
    recursive_loop: str | None = None
    log_hits: LogHits | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    # Facets of provisioned-idle, memory-cpu, cold-start-latency and package-size.
    scalers: tuple[Scaler, ...] = ()
    memory_recommendation: MemoryRecommendation | None = None
    snapstart: str = "None"  # SnapStart.ApplyOn: PublishedVersions or None
    efs: bool = False  # FileSystemConfigs: an Amazon EFS file system is mounted
    image_uri: str = ""  # a container-image function's ImageUri (GetFunction's Code)
    resolved_image_uri: str = ""  # ...and the digest Lambda resolved it to
    image_bytes: int | None = None  # the image's size in ECR (compressed), when readable
    revision_id: str = ""  # Lambda's RevisionId as read: changes with every code or configuration update
    # Environment.Error as GetFunction / ListFunctions answer a caller that cannot decrypt the variables (a customer
    # managed KMS key it has no access to): "<ErrorCode>: <Message>"; '' when the variables were returned.
    env_error: str = ""
    last_modified: str = ""  # LastModified as Lambda writes it (2025-06-10T14:02:37.412+0000): the heartbeat's clue
    kms_key_arn: str = ""  # KMSKeyArn: the customer managed key of the environment ('' for the AWS managed key)

    @property
    def arn(self) -> str:
        return self.ref.arn

    @property
    def name(self) -> str:
        return self.ref.name

    def tagged(self, key: str, value: str = "true") -> bool:
        """The function carries tag ``key`` with ``value`` (white space around it and case ignored): the one
        reading of a marking tag (exempt, critical, kill-switch scope).

        Example:
            >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), tags={"critical": " True"})
            >>> fn.tagged("critical"), fn.tagged("critical", "yes"), fn.tagged("other")
            (True, False, False)
        """
        return self.tags.get(key, "").strip().lower() == str(value).lower()

    @property
    def package_bytes(self) -> int:
        """Code plus layers, zipped (``CodeSize`` and each layer's), as Lambda reports them."""
        return self.code_size + sum(layer.code_size for layer in self.layers)

    @property
    def log_group(self) -> str:
        """The function's log group: its LoggingConfig.LogGroup, else ``/aws/lambda/<name>``."""
        return self.custom_log_group or f"/aws/lambda/{self.ref.name}"

    @property
    def tags_unreadable(self) -> str:
        """Why the function's tags could not be read ('' when they were). Tags decide exemption, ``critical`` and
        kill-switch scope: a function whose tags are unknown is never written to (fail closed)."""
        return self.unavailable.get("tags", "")


@dataclass(frozen=True)
class FixSpec:
    """A proposed change: ``action`` from ``fixes.ACTIONS`` on ``target`` with ``params``.

    ``prior`` holds the values the fix replaces, read from the snapshot, so it can be undone.
    """

    action: str
    target: str
    params: dict[str, Any]
    prior: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "target": self.target, "params": dict(self.params),
                "prior": dict(self.prior)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FixSpec:
        return cls(data["action"], data["target"], dict(data["params"]), dict(data["prior"]))


@dataclass(frozen=True)
class Finding:
    """A check's verdict on one function: what is wrong, how bad, and the fix if one exists."""

    policy: str
    function_arn: str
    severity: str
    message: str
    fix: FixSpec | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def utc_now_iso() -> str:
    """Now as ISO 8601 UTC to the second (``2025-06-10T14:20:00Z``), the ``time`` of a finding."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def finding_id(policy: str, function_arn: str, part: str = "") -> str:
    """A finding's stable id: the same policy on the same function (its ARN names account and region) gives the
    same id in every run, in the JSON output, Security Hub and OCSF alike; ``part`` tells apart several findings
    of one policy on one function (a mapping, an alias).

    Example:
        >>> finding_id("apigw-timeout", "arn:aws:lambda:us-east-1:123456789012:function:example-fn")
        'safetycatch/apigw-timeout/arn:aws:lambda:us-east-1:123456789012:function:example-fn'
        >>> finding_id("batch-partial-failure", "arn:aws:lambda:us-east-1:123456789012:function:f", "5e1f-uuid")
        'safetycatch/batch-partial-failure/arn:aws:lambda:us-east-1:123456789012:function:f/5e1f-uuid'
    """
    return f"safetycatch/{policy}/{function_arn}" + (f"/{part}" if part else "")


@dataclass
class Decision:
    """What the engine did with a finding. ``to_json`` is the contract's finding object."""

    finding: Finding
    mode: str
    outcome: str
    detail: str = ""
    approval_id: str = ""
    fix_id: str = ""
    time: str = field(default_factory=utc_now_iso)

    @property
    def id(self) -> str:
        """Stable for account, region, function and policy (see :func:`finding_id`)."""
        f = self.finding
        part = f.fix.target if f.fix and f.fix.target != f.function_arn else str(f.evidence.get("qualifier") or "")
        return finding_id(f.policy, f.function_arn, part)

    def audit_record(self, context: str) -> dict[str, Any]:
        """The audit record of this decision (``StateStore.audit``; ``history`` prints it): what the engine
        and the kill-switch store for every finding they decide.

        Example:
            >>> finding = Finding("apigw-timeout", "arn:aws:lambda:us-east-1:1:function:f", "high", "too long")
            >>> Decision(finding, "auto", "fixed", fix_id="fx1").audit_record("e1")["fix_id"]
            'fx1'
        """
        f = self.finding
        return {"policy": f.policy, "mode": self.mode, "outcome": self.outcome, "severity": f.severity,
                "message": f.message, "detail": self.detail, "context": context, "approval_id": self.approval_id,
                "fix_id": self.fix_id}

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        out: dict[str, Any] = {
            "id": self.id, "time": self.time, "policy": f.policy, "function": f.function_arn,
            "function_name": f.function_arn.rsplit(":function:", 1)[-1], "severity": f.severity,
            "mode": self.mode, "outcome": self.outcome, "message": f.message,
            "fix": ({"action": f.fix.action, "params": dict(f.fix.params), "prior": dict(f.fix.prior),
                     "target": f.fix.target} if f.fix else None),
        }
        if self.fix_id and out["fix"] is not None:
            out["fix"]["id"] = self.fix_id  # what ``safetycatch undo`` takes
        saving = f.evidence.get("estimated_monthly_saving_usd")
        if isinstance(saving, (int, float)) and not isinstance(saving, bool):
            out["estimated_monthly_saving_usd"] = saving
        if self.detail:
            out["detail"] = self.detail
        if self.approval_id:
            out["approval_id"] = self.approval_id
        if self.fix_id:
            out["fix_id"] = self.fix_id
        return out
