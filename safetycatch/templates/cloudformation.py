"""Read an AWS SAM or CloudFormation template into the snapshots the checks evaluate.

Parsing is cfn-lint's decoder (YAML with short-form intrinsics, or JSON; every node keeps its line), SAM
``Globals`` are merged by aws-sam-translator's own ``Globals`` and SAM policy templates (``S3CrudPolicy``,
``SQSSendMessagePolicy``...) are expanded by its ``PolicyTemplatesProcessor``, so SAM semantics are SAM's.
Intrinsics resolve to stand-ins named after logical ids (see ``intrinsics``). Unknown resource types are
ignored; what cannot be known before deploy (a managed policy's content, the size of an S3 ``CodeUri``) is
noted on the function instead of guessed.

Example:
    functions = read_cloudformation(Path("template.yaml"))
    functions[0].resource, functions[0].snapshot.timeout_s
    # -> ('OrdersApi', 30)
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samtranslator.policy_template_processor.exceptions import InsufficientParameterValues, InvalidParameterValues

from chalicelib.core.model import UNREAD_POLICY as UNREAD
from chalicelib.core.model import (
    ApiRoute,
    EventSourceMapping,
    FunctionRef,
    FunctionSnapshot,
    IntegrationResponse,
    Layer,
    ProvisionedConfig,
    RolePolicy,
    Route,
    Trigger,
    VpcEndpoint,
    invocation_mode,
)
from safetycatch.templates.intrinsics import ACCOUNT, REGION, Resolver, TooComplex
from safetycatch.templates.model import (
    NetworkModel,
    TemplateError,
    TemplateFunction,
    as_dict,
    as_int,
    as_list,
    code_root,
    local_code,
    zipped_size,
)

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
BATCH_DEFAULTS = {"SQS": 10, "Kinesis": 100, "DynamoDB": 100}
ROUTE_TARGETS = ("NatGatewayId", "GatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "InstanceId",
                 "NetworkInterfaceId", "VpcEndpointId")
# AWS managed policies that grant no write to a trigger (SQS / Kinesis / DynamoDB / S3 / SNS): nothing to read.
NO_TRIGGER_WRITES = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSXRayDaemonWriteAccess",
                     "AWSXrayWriteOnlyAccess", "AWSLambdaSQSQueueExecutionRole", "AWSLambdaKinesisExecutionRole",
                     "AWSLambdaDynamoDBExecutionRole", "CloudWatchLambdaInsightsExecutionRolePolicy")
# Every facet a template states (or states the absence of): checks read them as read.
TEMPLATE_FACETS = frozenset({"routes", "mappings", "triggers", "role_policies", "network", "urls", "provisioned",
                             "concurrency"})


def line(node: Any, key: str | None = None) -> int | None:
    """1-based line of ``node`` (or of ``key`` inside it) as cfn-lint's decoder marked it."""
    if key is not None and isinstance(node, dict):
        node = next((k for k in node if k == key), None)
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def decode(path: Path) -> dict[str, Any]:
    """cfn-lint's decoder; a file it cannot parse raises ``TemplateError`` with the file and line."""
    from cfnlint.decode import decode as cfn_decode

    logging.getLogger("cfnlint").setLevel(logging.CRITICAL)  # it logs the errors it also returns
    template, matches = cfn_decode(str(path))
    if matches or not isinstance(template, dict):
        first = matches[0] if matches else None
        problem = (first.message if first else "not a mapping") or "cannot parse"
        raise TemplateError(str(path), getattr(first, "linenumber", None) or 1, problem)
    if not isinstance(template.get("Resources"), dict):
        raise TemplateError(str(path), 1, "no Resources mapping: not a CloudFormation / SAM template")
    return template


@functools.cache
def _policy_templates() -> Any:
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


class _Links:
    """What other resources say about each function (by logical id), gathered in one pass."""

    def __init__(self, resolver: Resolver, path: Path) -> None:
        self.resolver, self.path = resolver, path
        self.mappings: dict[str, list[tuple[EventSourceMapping, int | None, str]]] = defaultdict(list)
        self.triggers: dict[str, list[Trigger]] = defaultdict(list)
        self.routes: dict[str, list[ApiRoute]] = defaultdict(list)
        self.provisioned: dict[str, list[ProvisionedConfig]] = defaultdict(list)
        self.urls: set[str] = set()
        self.role_policies: dict[str, list[RolePolicy]] = defaultdict(list)
        self.network = NetworkModel()
        self.layers: dict[str, int] = {}
        handlers = {
            "AWS::Lambda::EventSourceMapping": self._mapping, "AWS::S3::Bucket": self._bucket,
            "AWS::SNS::Subscription": self._subscription, "AWS::SNS::Topic": self._topic,
            "AWS::ApiGateway::Method": self._rest_method, "AWS::ApiGatewayV2::Integration": self._http_integration,
            "AWS::Lambda::Alias": self._provisioned, "AWS::Lambda::Version": self._provisioned,
            "AWS::Lambda::Url": self._url, "AWS::IAM::Policy": self._policy, "AWS::IAM::ManagedPolicy": self._policy,
            "AWS::Serverless::LayerVersion": self._layer, "AWS::Lambda::LayerVersion": self._layer,
            "AWS::Serverless::Api": self._openapi, "AWS::ApiGateway::RestApi": self._openapi,
            "AWS::Serverless::HttpApi": self._openapi, "AWS::ApiGatewayV2::Api": self._openapi,
        }
        for logical, resource in resolver.resources.items():
            if not isinstance(resource, dict):
                continue
            kind = str(resource.get("Type", ""))
            props = as_dict(resource.get("Properties"))
            if kind in handlers:
                handlers[kind](str(logical), props, resource)
            elif kind.startswith("AWS::EC2::"):
                _network(self.network, resolver, kind, str(logical), props)

    def function(self, node: Any) -> str | None:
        logical = self.resolver.logical_id(node)
        return logical if logical and self.resolver.type_of(logical) in FUNCTION_TYPES else None

    def _mapping(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        fn = self.function(props.get("FunctionName"))
        source = self.resolver.text(props.get("EventSourceArn")) or ""
        if fn:
            kind = source.split(":")[2] if source.count(":") >= 2 else ""
            size = self.resolver.text(props.get("BatchSize")) or str(BATCH_DEFAULTS.get(kind.title(), 10))
            state = "Disabled" if self.resolver.text(props.get("Enabled")) == "false" else "Enabled"
            mapping = EventSourceMapping(logical, source, "", _int(size, 10),
                                         tuple(self.resolver.value(props.get("FunctionResponseTypes")) or ()), state,
                                         _filters(self.resolver, props.get("FilterCriteria")))
            self.mappings[fn].append((mapping, line(resource), f"Resources.{logical}.Properties.FunctionResponseTypes"))

    def _bucket(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        notifications = self.resolver.value(props.get("NotificationConfiguration")) or {}
        for config in notifications.get("LambdaConfigurations", []) if isinstance(notifications, dict) else []:
            fn = self.function(config.get("Function")) if isinstance(config, dict) else None
            if fn and isinstance(config, dict):
                prefix, suffix = _key_filter(config.get("Filter"))
                bucket = self.resolver.get_att(logical, "Arn")
                self.triggers[fn].append(Trigger("s3", bucket, (str(config.get("Event", "")),), prefix, suffix))

    def _subscription(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        fn = self.function(props.get("Endpoint"))
        if fn and str(self.resolver.text(props.get("Protocol"))).lower() == "lambda":
            self.triggers[fn].append(Trigger("sns", self.resolver.text(props.get("TopicArn")) or ""))

    def _topic(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        for sub in props.get("Subscription") or [] if isinstance(props.get("Subscription"), list) else []:
            fn = self.function(sub.get("Endpoint")) if isinstance(sub, dict) else None
            if fn and str(self.resolver.text(sub.get("Protocol"))).lower() == "lambda":
                self.triggers[fn].append(Trigger("sns", self.resolver.ref(logical)))

    def _rest_method(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        integration = as_dict(props.get("Integration"))
        fn = self.function(integration.get("Uri"))
        if not fn:
            return
        responses = tuple(IntegrationResponse(str(self.resolver.text(r.get("StatusCode")) or ""),
                                              str(self.resolver.text(r.get("SelectionPattern")) or ""))
                          for r in as_list(integration.get("IntegrationResponses")) if isinstance(r, dict))
        api = self.resolver.logical_id(props.get("RestApiId")) or "RestApi"
        method = self.resolver.text(props.get("HttpMethod")) or "ANY"
        mode = invocation_mode(self.resolver.value(integration.get("RequestParameters")),
                               self.resolver.text(integration.get("ResponseTransferMode")),
                               self.resolver.text(integration.get("Uri")))
        self.routes[fn].append(ApiRoute(
            "rest", api, api, f"{method} ({logical})", str(self.resolver.text(integration.get("Type")) or ""),
            _int(self.resolver.text(integration.get("TimeoutInMillis")), 29000), logical, method, logical, responses,
            invocation=mode))

    def _http_integration(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        fn = self.function(props.get("IntegrationUri"))
        if fn:
            api = self.resolver.logical_id(props.get("ApiId")) or "HttpApi"
            websocket = self.resolver.text(self.resolver.properties(api).get("ProtocolType")) == "WEBSOCKET"
            limit = 29000 if websocket else 30000  # a WebSocket integration waits 29 s at most
            self.routes[fn].append(ApiRoute("websocket" if websocket else "http", api, api, f"integration {logical}",
                                            str(self.resolver.text(props.get("IntegrationType")) or "AWS_PROXY"),
                                            min(_int(self.resolver.text(props.get("TimeoutInMillis")), limit), limit),
                                            invocation=invocation_mode(self.resolver.value(
                                                props.get("RequestParameters")))))

    def _openapi(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        """Integrations an OpenAPI definition declares inline (``DefinitionBody`` / ``Body``): every
        ``x-amazon-apigateway-integration`` whose URI invokes a function of the template."""
        kind = str(resource.get("Type", ""))
        rest = kind in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi")
        websocket = self.resolver.text(props.get("ProtocolType")) == "WEBSOCKET"
        api_kind = "rest" if rest else "websocket" if websocket else "http"
        limit = 29000 if rest or websocket else 30000
        paths = as_dict(as_dict(props.get("DefinitionBody") or props.get("Body")).get("paths"))
        for path, methods in paths.items():
            for method, operation in as_dict(methods).items():
                integration = as_dict(as_dict(operation).get("x-amazon-apigateway-integration"))
                if fn := self.function(integration.get("uri")):
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else str(method).upper()
                    self.routes[fn].append(_openapi_route(self.resolver, api_kind, logical, f"{verb} {path}",
                                                          integration, limit))

    def _provisioned(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        fn = self.function(props.get("FunctionName"))
        config = props.get("ProvisionedConcurrencyConfig")
        if fn and isinstance(config, dict):
            count = _int(self.resolver.text(config.get("ProvisionedConcurrentExecutions")), 0)
            self.provisioned[fn].append(ProvisionedConfig(logical, count, None, "template"))

    def _url(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        if fn := self.function(props.get("TargetFunctionArn")):
            self.urls.add(fn)

    def _policy(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        document = self.resolver.value(props.get("PolicyDocument"))
        roles = as_list(props.get("Roles"))
        for role in roles:
            role_id = self.resolver.logical_id(role)
            if role_id and isinstance(document, dict):
                self.role_policies[role_id].append(RolePolicy(logical, "inline", document))

    def _layer(self, logical: str, props: dict[str, Any], resource: Any) -> None:
        uri = self.resolver.text(props.get("ContentUri") or props.get("Content"))
        local = local_code(self.path, uri)[0] if uri and not uri.startswith("s3://") else None
        if local is not None:
            self.layers[logical] = zipped_size(local, code_root(self.path))


def _openapi_route(resolver: Resolver, kind: Any, api: str, route: str, integration: dict[str, Any],
                   limit: int) -> ApiRoute:
    """One OpenAPI operation's Lambda integration as an ``ApiRoute`` (``responses``: selection pattern ->
    ``{statusCode}``, ``default`` being the response no pattern picks)."""
    responses = tuple(IntegrationResponse(str(resolver.text(as_dict(r).get("statusCode")) or ""),
                                          "" if str(pattern) == "default" else str(pattern))
                      for pattern, r in as_dict(integration.get("responses")).items())
    timeout = _int(resolver.text(integration.get("timeoutInMillis")), limit)
    timeout = timeout if kind == "rest" else min(timeout, limit)  # a REST API's limit may be raised; not the others
    mode = invocation_mode(resolver.value(integration.get("requestParameters")),
                           resolver.text(integration.get("responseTransferMode")),
                           resolver.text(integration.get("uri")))
    return ApiRoute(kind, api, api, route, str(resolver.text(integration.get("type")) or "aws_proxy").upper(),
                    timeout, responses=responses, invocation=mode)


def _filters(resolver: Resolver, node: Any) -> tuple[str, ...]:
    """``FilterCriteria.Filters[].Pattern`` as JSON text (a template may write the pattern as text or as YAML)."""
    found = []
    for item in as_list(as_dict(resolver.value(node)).get("Filters")):
        pattern = as_dict(item).get("Pattern")
        found.append(pattern if isinstance(pattern, str) else json.dumps(pattern))
    return tuple(found)


def _int(text: str | None, default: int) -> int:
    return as_int(text, default)


def _key_filter(node: Any) -> tuple[str, str]:
    rules = ((node or {}).get("S3Key") or {}).get("Rules") if isinstance(node, dict) else None
    found = {str(r.get("Name", "")).lower(): str(r.get("Value", "")) for r in rules or [] if isinstance(r, dict)}
    return found.get("prefix", ""), found.get("suffix", "")


def _network(network: NetworkModel, resolver: Resolver, kind: str, logical: str, props: dict[str, Any]) -> None:
    me = resolver.ref(logical)
    if kind == "AWS::EC2::Subnet":
        network.subnets[me] = resolver.text(props.get("VpcId")) or "vpc"
    elif kind == "AWS::EC2::RouteTable":
        network.tables.setdefault(me, [])
    elif kind == "AWS::EC2::SubnetRouteTableAssociation":
        subnet, table = resolver.text(props.get("SubnetId")), resolver.text(props.get("RouteTableId"))
        if subnet and table:
            network.associations[subnet] = table
    elif kind == "AWS::EC2::Route":
        table = resolver.text(props.get("RouteTableId")) or ""
        target = next((resolver.text(props[k]) for k in ROUTE_TARGETS if props.get(k) is not None), None)
        destination = resolver.text(props.get("DestinationCidrBlock")) or ""
        network.tables.setdefault(table, []).append(Route(destination, target or "blackhole",
                                                          "active" if target else "blackhole"))
    elif kind == "AWS::EC2::NatGateway":
        connectivity = resolver.text(props.get("ConnectivityType")) or "public"
        network.nats[me] = (resolver.text(props.get("SubnetId")) or "", connectivity)
    elif kind == "AWS::EC2::VPCEndpoint":
        service = (resolver.text(props.get("ServiceName")) or "").rsplit(".", 1)[-1]
        tables = tuple(t for t in resolver.value(props.get("RouteTableIds")) or [] if isinstance(t, str))
        network.endpoints.append(VpcEndpoint(me, service, resolver.text(props.get("VpcEndpointType")) or "Gateway",
                                             tables))


def _tags(resolver: Resolver, node: Any) -> dict[str, str]:
    value = resolver.value(node)
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(t.get("Key")): str(t.get("Value")) for t in value if isinstance(t, dict)}
    return {}


def _environment(resolver: Resolver, props: dict[str, Any]) -> dict[str, str]:
    environment = props.get("Environment")
    variables = environment.get("Variables") if isinstance(environment, dict) else None
    if not isinstance(variables, dict):
        return {}
    out = {}
    for name, node in variables.items():
        if node is None:  # `NAME:` with no value: an empty string, not a secret
            out[str(name)] = ""
            continue
        value = _env_value(resolver, node)
        if value is not None:
            out[str(name)] = value
    return out


def _env_value(resolver: Resolver, node: Any) -> str | None:
    """What env-secrets reads for one variable: None for a reference to a resource (``!Ref Table``,
    ``!GetAtt Queue.Arn``, ``!ImportValue``: a name or ARN, never a secret); a template parameter without a
    usable default stands for the value passed at deploy (in plain text in the function's configuration)."""
    if isinstance(node, dict) and len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref" and isinstance(arg, str) and arg in resolver.parameters:
            default = as_dict(resolver.parameters[arg]).get("Default")
            text = str(default) if isinstance(default, (str, int, float)) and not isinstance(default, bool) else ""
            return text if text.strip() else f"<the value of parameter {arg}>"
        if key == "Fn::ImportValue" or (key in ("Ref", "Fn::GetAtt") and resolver.logical_id(node)):
            return None
        if key == "Fn::Sub" and resolver.logical_id(node) and not _sub_literal(arg):
            return None
    value = resolver.text(node)
    return value if value is not None else "<not known before deploy>"


def _sub_literal(arg: Any) -> str:
    """The literal text of a ``Fn::Sub`` template once its ``${...}`` variables are taken out."""
    template = arg[0] if isinstance(arg, list) and arg else arg
    return re.sub(r"\$\{[^}]*\}|arn:|[:/._-]", "", str(template)).strip()


def _sam_event(links: _Links, logical: str, name: str, event: Any, fn: TemplateFunction, at: int) -> None:
    """One SAM ``Events`` entry: an API route, a batch mapping or a push trigger of the function."""
    resolver, snapshot = links.resolver, fn.snapshot
    kind = str(event.get("Type", "")) if isinstance(event, dict) else ""
    props = as_dict(as_dict(event).get("Properties"))
    timeout = resolver.text(props.get("TimeoutInMillis"))
    if kind in ("Api", "HttpApi"):
        api_key = "RestApiId" if kind == "Api" else "ApiId"
        api = resolver.logical_id(props.get(api_key)) or ("ServerlessRestApi" if kind == "Api" else "ServerlessHttpApi")
        route = f"{str(resolver.text(props.get('Method')) or 'ANY').upper()} {resolver.text(props.get('Path')) or '/'}"
        rest = kind == "Api"
        mode = invocation_mode(None, resolver.text(props.get("ResponseTransferMode")))  # SAM's STREAM switch
        snapshot.routes += (ApiRoute("rest" if rest else "http", api, api, route, "AWS_PROXY",
                                     _int(timeout, 29000 if rest else 30000), invocation=mode),)
    elif kind in BATCH_DEFAULTS:
        source = resolver.text(props.get("Queue") or props.get("Stream")) or ""
        state = "Disabled" if resolver.text(props.get("Enabled")) == "false" else "Enabled"
        mapping = EventSourceMapping(f"{logical}.{name}", source, snapshot.arn,
                                     _int(resolver.text(props.get("BatchSize")), BATCH_DEFAULTS[kind]),
                                     tuple(resolver.value(props.get("FunctionResponseTypes")) or ()), state,
                                     _filters(resolver, props.get("FilterCriteria")))
        snapshot.mappings += (mapping,)
        fn.lines[f"mapping:{mapping.uuid}"] = at
        fn.mapping_paths[mapping.uuid] = (f"Resources.{logical}.Properties.Events.{name}.Properties."
                                          "FunctionResponseTypes")
    elif kind == "S3":
        bucket = resolver.logical_id(props.get("Bucket"))
        arn = resolver.get_att(bucket, "Arn") if bucket else f"arn:aws:s3:::{resolver.text(props.get('Bucket'))}"
        events = resolver.value(props.get("Events"))
        prefix, suffix = _key_filter(resolver.value(props.get("Filter")))
        snapshot.triggers += (Trigger("s3", arn, tuple(events if isinstance(events, list) else [str(events)]),
                                      prefix, suffix),)
    elif kind == "SNS":
        snapshot.triggers += (Trigger("sns", resolver.text(props.get("Topic")) or ""),)


def _sam_policies(resolver: Resolver, node: Any, fn: TemplateFunction) -> list[RolePolicy]:
    """SAM ``Policies``: inline statements, policy templates (expanded by SAM's processor), managed names."""
    entries = node if isinstance(node, list) else [node] if node is not None else []
    found = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and len(entry) == 1 and _policy_templates().has(next(iter(entry))):
            (template, params), = entry.items()
            try:
                document = _policy_templates().convert(template, params if isinstance(params, dict) else {})
            except (InsufficientParameterValues, InvalidParameterValues) as exc:
                fn.notes.append(f"policy template {template}: {exc}")
                continue
            found.append(RolePolicy(str(template), "inline", resolver.value(document)))
        elif isinstance(entry, dict) and "Statement" in entry:
            found.append(RolePolicy(f"Policies[{index}]", "inline", resolver.value(entry)))
        else:
            found.extend(_managed(resolver.text(entry) or "a policy", fn))
    return found


def _managed(name: str, fn: TemplateFunction) -> list[RolePolicy]:
    """A managed policy, whose content is not in the template: noted, and kept as ``unread`` (vpc-no-egress
    then cannot tell which services the function calls)."""
    if name.rsplit("/", 1)[-1] in NO_TRIGGER_WRITES:
        return []
    fn.notes.append(f"managed policy {name} is not read before deploy (recursive-trigger ignores it)")
    return [RolePolicy(name, UNREAD, {})]


def _role_policies(links: _Links, role_node: Any, fn: TemplateFunction) -> list[RolePolicy]:
    """The inline policies of the execution role the template declares (``Role``), and policies naming it."""
    resolver = links.resolver
    role = resolver.logical_id(role_node)
    if not role or resolver.type_of(role) != "AWS::IAM::Role":
        fn.notes.append("the execution role is not in the template (recursive-trigger cannot read it)")
        return [RolePolicy(str(resolver.text(role_node) or "the execution role"), UNREAD, {})]
    props = resolver.properties(role)
    found = [RolePolicy(str(resolver.text(p.get("PolicyName")) or role), "inline",
                        resolver.value(p.get("PolicyDocument")))
             for p in props.get("Policies") or [] if isinstance(p, dict)]
    for arn in as_list(resolver.value(props.get("ManagedPolicyArns"))):
        found.extend(_managed(str(arn), fn))
    return found + links.role_policies.get(role, [])


def _code(links: _Links, props: dict[str, Any], fn: TemplateFunction) -> None:
    """CodeUri / Code: the zipped size of local code (an S3 location is unknown before deploy), layers."""
    resolver, snapshot = links.resolver, fn.snapshot
    code = props.get("CodeUri", props.get("Code"))
    uri = resolver.text(code)
    if isinstance(code, dict) and "ZipFile" in code:
        snapshot.code_size = len(str(resolver.text(code["ZipFile"]) or "").encode())
    elif uri and not uri.startswith("s3://"):
        local, note = local_code(links.path, uri)
        if local is not None:
            snapshot.code_size = zipped_size(local, code_root(links.path))
            fn.lines["CodeUri"] = line(props, "CodeUri") or fn.line
        else:
            fn.notes.append(note)
    elif code is not None and snapshot.package_type == "Zip":
        fn.notes.append("the code is in S3 (package-size counts only local code)")
    layers = []
    for node in props.get("Layers") or [] if isinstance(props.get("Layers"), list) else []:
        layer = resolver.logical_id(node)
        layers.append(Layer(resolver.text(node) or str(layer), links.layers.get(layer or "", 0)))
    snapshot.layers = tuple(layers)


def _snapshot(links: _Links, logical: str, props: dict[str, Any], where: int, own: dict[str, Any]) -> TemplateFunction:
    """The snapshot of the function's configuration; ``own`` are its properties before SAM Globals were merged
    (a merged key keeps the Globals' line even where the function overrides the value)."""
    resolver = links.resolver
    text = resolver.text
    snapshot = FunctionSnapshot(FunctionRef(resolver.name_of(logical), ACCOUNT, REGION))
    fn = TemplateFunction(snapshot, logical, str(links.path), where)
    for key in ("Timeout", "MemorySize", "CodeUri", "Code", "Environment", "ReservedConcurrentExecutions", "VpcConfig",
                "Tags", "ProvisionedConcurrencyConfig", "Events", "Policies", "Role"):
        if (at := line(own, key) or line(props, key)) is not None:
            fn.lines[key] = at
            if line(own, key) is None:
                fn.inherited.add(key)
    snapshot.runtime = text(props.get("Runtime")) or ""
    snapshot.timeout_s = _int(text(props.get("Timeout")), 3)
    snapshot.memory_mb = _int(text(props.get("MemorySize")), 128)
    snapshot.package_type = text(props.get("PackageType")) or "Zip"
    snapshot.architectures = tuple(resolver.value(props.get("Architectures")) or ("x86_64",))
    # what decides whether SnapStart applies (cold-start-latency)
    snap_start, ephemeral = resolver.value(props.get("SnapStart")), resolver.value(props.get("EphemeralStorage"))
    snapshot.snapstart = str((snap_start if isinstance(snap_start, dict) else {}).get("ApplyOn") or "None")
    snapshot.ephemeral_mb = _int(str((ephemeral if isinstance(ephemeral, dict) else {}).get("Size", 512)), 512)
    snapshot.efs = bool(props.get("FileSystemConfigs"))
    snapshot.tags = _tags(resolver, props.get("Tags"))
    snapshot.env = _environment(resolver, props)
    reserved = text(props.get("ReservedConcurrentExecutions"))
    snapshot.reserved_concurrency = _int(reserved, 0) if reserved is not None else None
    vpc = as_dict(resolver.value(props.get("VpcConfig")))
    snapshot.subnet_ids = tuple(str(s) for s in as_list(vpc.get("SubnetIds")))
    _code(links, props, fn)
    return fn


def _function(links: _Links, logical: str, resource: Any, sam_globals: Any, where: int) -> TemplateFunction:
    resolver = links.resolver
    sam = resource.get("Type") == "AWS::Serverless::Function"
    own = props = as_dict(resource.get("Properties"))
    if sam and sam_globals is not None:
        props = sam_globals.merge("AWS::Serverless::Function", props, logical)
    fn = _snapshot(links, logical, props, where, own)
    snapshot = fn.snapshot
    for name, event in as_dict(props.get("Events")).items() if sam else []:
        _sam_event(links, logical, str(name), event, fn, line(name) or fn.line)
    for mapping, at, path in links.mappings.get(logical, []):
        snapshot.mappings += (mapping,)
        fn.lines[f"mapping:{mapping.uuid}"], fn.mapping_paths[mapping.uuid] = at or fn.line, path
    declared = links.routes.get(logical, [])  # an OpenAPI definition's integration wins over a SAM event's
    keys = {(r.api_id, r.route) for r in declared}
    snapshot.routes = tuple(r for r in snapshot.routes if (r.api_id, r.route) not in keys) + tuple(declared)
    snapshot.triggers += tuple(links.triggers.get(logical, []))
    provisioned = list(links.provisioned.get(logical, []))
    config = props.get("ProvisionedConcurrencyConfig") if sam else None
    if isinstance(config, dict):
        alias = resolver.text(props.get("AutoPublishAlias")) or "alias"
        provisioned.append(ProvisionedConfig(alias, _int(resolver.text(config.get("ProvisionedConcurrentExecutions")),
                                                         0), None, "template"))
    snapshot.provisioned = tuple(provisioned)
    snapshot.function_url = "function URL" if logical in links.urls or (sam and props.get("FunctionUrlConfig")) else ""
    if sam and props.get("Role") is None:
        snapshot.role_policies = tuple(_sam_policies(resolver, props.get("Policies"), fn))
    else:
        snapshot.role_policies = tuple(_role_policies(links, props.get("Role"), fn))
    snapshot.network = links.network.facts(snapshot.subnet_ids)
    if snapshot.subnet_ids and snapshot.network is None:
        fn.notes.append("its subnets' routes are not in the template (vpc-no-egress not evaluated)")
    snapshot.vpc_id = snapshot.network.vpc_id if snapshot.network else ""
    snapshot.loaded = set(TEMPLATE_FACETS)
    return fn


def read_cloudformation(path: Path) -> list[TemplateFunction]:
    """Every function a SAM / CloudFormation template declares, as ``TemplateFunction``s.

    Example:
        fns = read_cloudformation(Path("tests/templates/sam-findings.yaml"))
    """
    from samtranslator.model.exceptions import ExceptionWithMessage
    from samtranslator.plugins.globals.globals import Globals

    template = decode(path)
    resolver = Resolver(template["Resources"], template.get("Parameters"), template.get("Mappings"))
    try:
        sam_globals = Globals(template) if isinstance(template.get("Globals"), dict) else None
    except ExceptionWithMessage as exc:
        raise TemplateError(str(path), line(template, "Globals") or 1, exc.message) from None
    with _unreadable(path, template["Resources"], None):
        links = _Links(resolver, path)
    functions = []
    for logical, resource in template["Resources"].items():
        if isinstance(resource, dict) and resource.get("Type") in FUNCTION_TYPES:
            with _unreadable(path, template["Resources"], logical):
                functions.append(_function(links, str(logical), resource, sam_globals, line(logical) or 1))
    return functions


@contextlib.contextmanager
def _unreadable(path: Path, resources: Any, logical: Any) -> Iterator[None]:
    """A construct the reader cannot make sense of (a loop, a value of the wrong shape) becomes one line naming
    the file and the line of the resource, never a traceback."""
    try:
        yield
    except TooComplex as exc:
        raise TemplateError(str(path), line(logical) or 1, f"{logical or 'Resources'}: {exc}") from None
    except RecursionError:
        raise TemplateError(str(path), line(logical) or 1,
                            f"{logical or 'Resources'}: nested too deeply to read (a self-reference?)") from None
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        where = f"resource {logical}" if logical else "a resource"
        raise TemplateError(str(path), line(logical) or 1,
                            f"cannot read {where}: {type(exc).__name__}: {exc}") from None
