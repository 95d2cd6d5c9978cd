"""Read a Terraform plan (``terraform show -json plan.out``) into the snapshots the checks evaluate.

The plan's ``planned_values`` hold each resource's attributes as they will be after apply. A value that is
unknown until apply (the ARN of a queue being created) is taken from the ``configuration`` section instead:
its ``references`` name the resource it comes from (``aws_sqs_queue.jobs.arn``), which resolves to the same
stand-in identity as in a CloudFormation template. Line numbers are those of the resource's ``address`` in
the plan file. Resource types safetycatch does not read are ignored.

Example:
    functions = read_plan(Path("plan.json"), json.loads(Path("plan.json").read_text()))
    functions[0].resource
    # -> 'aws_lambda_function.orders_api'
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from chalicelib.core.model import (
    UNREAD_POLICY,
    ApiRoute,
    EventSourceMapping,
    FunctionRef,
    FunctionSnapshot,
    Layer,
    ProvisionedConfig,
    RolePolicy,
    Route,
    Trigger,
    VpcEndpoint,
    invocation_mode,
)
from safetycatch.templates.intrinsics import ACCOUNT, REGION, _identities
from safetycatch.templates.model import (
    NetworkModel,
    TemplateError,
    TemplateFunction,
    as_dict,
    as_int,
    code_root,
    local_code,
    zipped_size,
)

# Terraform type -> the CloudFormation type whose stand-in identities it shares; attribute -> CFN attribute.
CFN_TYPES = {"aws_sqs_queue": "AWS::SQS::Queue", "aws_sns_topic": "AWS::SNS::Topic", "aws_s3_bucket": "AWS::S3::Bucket",
             "aws_dynamodb_table": "AWS::DynamoDB::Table", "aws_kinesis_stream": "AWS::Kinesis::Stream",
             "aws_lambda_function": "AWS::Lambda::Function", "aws_iam_role": "AWS::IAM::Role",
             "aws_subnet": "AWS::EC2::Subnet", "aws_route_table": "AWS::EC2::RouteTable",
             "aws_nat_gateway": "AWS::EC2::NatGateway", "aws_internet_gateway": "AWS::EC2::InternetGateway",
             "aws_vpc": "AWS::EC2::VPC", "aws_vpc_endpoint": "AWS::EC2::VPCEndpoint",
             "aws_ec2_transit_gateway": "AWS::EC2::TransitGateway", "aws_vpn_gateway": "AWS::EC2::VPNGateway",
             "aws_secretsmanager_secret": "AWS::SecretsManager::Secret"}
ATTRIBUTES = {"arn": "Arn", "stream_arn": "StreamArn", "url": "QueueUrl", "invoke_arn": "Arn", "qualified_arn": "Arn",
              "id": "", "name": ""}
NAME_ATTRIBUTES = ("function_name", "name", "bucket")
ROUTE_TARGETS = ("nat_gateway_id", "gateway_id", "transit_gateway_id", "vpc_peering_connection_id",
                 "network_interface_id", "vpc_endpoint_id")
BATCH_DEFAULTS = {"sqs": 10, "kinesis": 100, "dynamodb": 100}


def is_plan(document: Any) -> bool:
    """A ``terraform show -json`` plan (or state) document.

    Example:
        >>> is_plan({"format_version": "1.2", "terraform_version": "1.9.5", "planned_values": {}})
        True
    """
    return isinstance(document, dict) and "terraform_version" in document and (
        "planned_values" in document or "resource_changes" in document)


def _module_resources(module: Any, found: dict[str, tuple[str, dict[str, Any]]]) -> None:
    for resource in module.get("resources", []) if isinstance(module, dict) else []:
        if isinstance(resource, dict) and resource.get("mode", "managed") == "managed":
            values = as_dict(resource.get("values"))
            found[str(resource.get("address"))] = (str(resource.get("type")), values)
    for child in module.get("child_modules", []) if isinstance(module, dict) else []:
        _module_resources(child, found)


def _module_expressions(module: Any, prefix: str, found: dict[str, dict[str, Any]]) -> None:
    for resource in module.get("resources", []) if isinstance(module, dict) else []:
        if isinstance(resource, dict) and isinstance(resource.get("expressions"), dict):
            found[prefix + str(resource.get("address"))] = resource["expressions"]
    for name, call in (module.get("module_calls") or {}).items() if isinstance(module, dict) else []:
        if isinstance(call, dict):
            _module_expressions(call.get("module"), f"{prefix}module.{name}.", found)


class Plan:
    """One plan's resources (``address -> (type, values)``) and configuration expressions."""

    def __init__(self, document: dict[str, Any], path: Path) -> None:
        self.path = path
        self.resources: dict[str, tuple[str, dict[str, Any]]] = {}
        _module_resources((document.get("planned_values") or {}).get("root_module"), self.resources)
        self.expressions: dict[str, dict[str, Any]] = {}
        _module_expressions((document.get("configuration") or {}).get("root_module"), "", self.expressions)
        self.text = path.read_text(encoding="utf-8", errors="replace")

    def line_of(self, address: str) -> int:
        m = re.search(r'"address"\s*:\s*"' + re.escape(address) + '"', self.text)
        return self.text.count("\n", 0, m.start()) + 1 if m else 1

    def of_type(self, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
        return [(address, values) for address, (kind, values) in self.resources.items() if kind in kinds]

    def _module_prefix(self, address: str) -> str:
        return address[: address.rfind(".", 0, address.rfind(".")) + 1] if address.startswith("module.") else ""

    def references(self, address: str, *path: str | int) -> list[str]:
        """Addresses-with-attribute (``aws_sqs_queue.jobs.arn``) the expression at ``path`` refers to."""
        node: Any = self.expressions.get(address, {})
        for key in path:
            if isinstance(node, list):
                node = node[key] if isinstance(key, int) and key < len(node) else (node[0] if node else None)
            if isinstance(key, str):
                node = node.get(key) if isinstance(node, dict) else None
        refs = node.get("references", []) if isinstance(node, dict) else []
        prefix = self._module_prefix(address)
        return [prefix + r for r in refs if isinstance(r, str) and not r.startswith(("var.", "local.", "data."))]

    def stand_in(self, reference: str) -> str | None:
        """The stand-in value of ``type.name.attr`` for a resource in the plan."""
        base, _, attribute = reference.rpartition(".")
        if base not in self.resources or attribute not in ATTRIBUTES:
            return None
        kind, values = self.resources[base]
        name = next((str(values[k]) for k in NAME_ATTRIBUTES if isinstance(values.get(k), str)), base.split(".")[-1])
        ids = _identities(base.split(".")[-1], CFN_TYPES.get(kind, ""), name)
        return ids.get(ATTRIBUTES[attribute], ids[""])

    def value(self, address: str, values: dict[str, Any], key: str, *path: str | int) -> Any:
        """A known value, else the stand-in of what its expression references (lists: every reference)."""
        known = values.get(key)
        for step in path:
            known = (known[step] if isinstance(known, list) and isinstance(step, int) and step < len(known)
                     else known.get(step) if isinstance(known, dict) and isinstance(step, str) else None)
        if known is not None:
            return known
        stand_ins = [s for r in self.references(address, key, *path) if (s := self.stand_in(r)) is not None]
        return stand_ins[0] if len(stand_ins) == 1 else (stand_ins or None)

    def target(self, address: str, values: dict[str, Any], key: str, kinds: tuple[str, ...], *path: str | int
               ) -> str | None:
        """The plan resource of one of ``kinds`` that ``key`` points at: by reference, else by a known value
        equal to its name or ARN."""
        for ref in self.references(address, key, *path):
            base = ref.rpartition(".")[0] if ref.count(".") >= 2 and not ref.startswith("module.") else ref
            for candidate in (ref, base, ref.rpartition(".")[0]):
                if candidate in self.resources and self.resources[candidate][0] in kinds:
                    return candidate
        known = self.value(address, values, key, *path)
        for other, other_values in self.of_type(*kinds):
            names = {other_values.get(k) for k in (*NAME_ATTRIBUTES, "arn", "id", "invoke_arn")}
            if isinstance(known, str) and (known in names or known.split(":")[-1] in names):
                return other
        return None


def _policy_document(text: Any) -> dict[str, Any] | None:
    if isinstance(text, str):
        try:
            document = json.loads(text)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return None


class _Links:
    """What the plan's other resources say about each function (by address)."""

    FUNCTION = ("aws_lambda_function",)

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.mappings: dict[str, list[tuple[EventSourceMapping, str]]] = defaultdict(list)
        self.triggers: dict[str, list[Trigger]] = defaultdict(list)
        self.routes: dict[str, list[ApiRoute]] = defaultdict(list)
        self.provisioned: dict[str, list[ProvisionedConfig]] = defaultdict(list)
        self.urls: set[str] = set()
        self.role_policies: dict[str, list[RolePolicy]] = defaultdict(list)
        self.unknown_policies: dict[str, list[str]] = defaultdict(list)
        self.network = NetworkModel()
        for address, (kind, values) in plan.resources.items():
            handler = getattr(self, f"_{kind}", None)
            if handler is not None:
                handler(address, values)
            elif kind in ("aws_subnet", "aws_route_table", "aws_route", "aws_route_table_association",
                          "aws_nat_gateway", "aws_vpc_endpoint"):
                _network(self.network, plan, kind, address, values)

    def _fn(self, address: str, values: dict[str, Any], key: str, *path: str | int) -> str | None:
        return self.plan.target(address, values, key, self.FUNCTION, *path)

    def _aws_lambda_event_source_mapping(self, address: str, values: dict[str, Any]) -> None:
        fn = self._fn(address, values, "function_name")
        source = str(self.plan.value(address, values, "event_source_arn") or "")
        if fn:
            kind = source.split(":")[2] if source.count(":") >= 2 else ""
            size = values.get("batch_size") or BATCH_DEFAULTS.get(kind, 10)
            state = "Disabled" if values.get("enabled") is False else "Enabled"
            mapping = EventSourceMapping(address, source, "", int(size),
                                         tuple(values.get("function_response_types") or ()), state,
                                         tuple(str(f.get("pattern") or "") for c in values.get("filter_criteria") or []
                                               if isinstance(c, dict) for f in c.get("filter") or []
                                               if isinstance(f, dict)))
            self.mappings[fn].append((mapping, f"{address}.function_response_types"))

    def _aws_s3_bucket_notification(self, address: str, values: dict[str, Any]) -> None:
        bucket = str(self.plan.value(address, values, "bucket") or "")
        for index, config in enumerate(values.get("lambda_function") or [{}]):
            fn = self._fn(address, values, "lambda_function", index, "lambda_function_arn")
            if fn and isinstance(config, dict):
                events = tuple(config.get("events") or ("s3:ObjectCreated:*",))
                self.triggers[fn].append(Trigger("s3", f"arn:aws:s3:::{bucket}", events,
                                                 str(config.get("filter_prefix") or ""),
                                                 str(config.get("filter_suffix") or "")))

    def _aws_sns_topic_subscription(self, address: str, values: dict[str, Any]) -> None:
        fn = self._fn(address, values, "endpoint")
        if fn and values.get("protocol") == "lambda":
            self.triggers[fn].append(Trigger("sns", str(self.plan.value(address, values, "topic_arn") or "")))

    def _aws_apigatewayv2_integration(self, address: str, values: dict[str, Any]) -> None:
        if fn := self._fn(address, values, "integration_uri"):
            api = str(self.plan.value(address, values, "api_id") or "http-api")
            api_address = self.plan.target(address, values, "api_id", ("aws_apigatewayv2_api",))
            protocol = self.plan.resources[api_address][1].get("protocol_type") if api_address else "HTTP"
            limit = 29000 if protocol == "WEBSOCKET" else 30000  # a WebSocket integration waits 29 s at most
            kind = str(values.get("integration_type") or "AWS_PROXY")
            self.routes[fn].append(ApiRoute("websocket" if protocol == "WEBSOCKET" else "http", api, api,
                                            f"integration {address}", kind,
                                            min(as_int(values.get("timeout_milliseconds"), limit), limit),
                                            invocation=invocation_mode(values.get("request_parameters"))))

    def _aws_api_gateway_integration(self, address: str, values: dict[str, Any]) -> None:
        if fn := self._fn(address, values, "uri"):
            api = str(self.plan.value(address, values, "rest_api_id") or "rest-api")
            method = str(values.get("http_method") or "ANY")
            mode = invocation_mode(values.get("request_parameters"), values.get("response_transfer_mode"),
                                   self.plan.value(address, values, "uri"))
            self.routes[fn].append(ApiRoute("rest", api, api, f"{method} ({address})",
                                            str(values.get("type") or "AWS_PROXY"),
                                            as_int(values.get("timeout_milliseconds"), 29000), invocation=mode))

    def _aws_lambda_provisioned_concurrency_config(self, address: str, values: dict[str, Any]) -> None:
        if fn := self._fn(address, values, "function_name"):
            count = int(values.get("provisioned_concurrent_executions") or 0)
            self.provisioned[fn].append(ProvisionedConfig(str(values.get("qualifier") or address), count, None,
                                                          "template"))

    def _aws_lambda_function_url(self, address: str, values: dict[str, Any]) -> None:
        if fn := self._fn(address, values, "function_name"):
            self.urls.add(fn)

    def _role_document(self, address: str, role: str | None, name: str, text: Any) -> None:
        if not role:
            return
        document = _policy_document(text)
        if document is None:
            self.unknown_policies[role].append(f"{name} is unknown until apply (recursive-trigger cannot read it)")
        else:
            self.role_policies[role].append(RolePolicy(name, "inline", document))

    def _aws_iam_role_policy(self, address: str, values: dict[str, Any]) -> None:
        role = self.plan.target(address, values, "role", ("aws_iam_role",))
        self._role_document(address, role, address, values.get("policy"))

    def _aws_iam_role(self, address: str, values: dict[str, Any]) -> None:
        for index, inline in enumerate(values.get("inline_policy") or []):
            if isinstance(inline, dict) and inline.get("policy"):
                self._role_document(address, address, str(inline.get("name") or f"inline_policy[{index}]"),
                                    inline.get("policy"))

    def _aws_iam_role_policy_attachment(self, address: str, values: dict[str, Any]) -> None:
        role = self.plan.target(address, values, "role", ("aws_iam_role",))
        policy = self.plan.target(address, values, "policy_arn", ("aws_iam_policy",))
        if policy:
            self._role_document(address, role, policy, self.plan.resources[policy][1].get("policy"))
        elif role:
            arn = values.get("policy_arn") or "a managed policy"
            self.unknown_policies[role].append(f"managed policy {arn} is not read before deploy")


def _network(network: NetworkModel, plan: Plan, kind: str, address: str, values: dict[str, Any]) -> None:
    me = str(values.get("id") or plan.stand_in(f"{address}.id") or address)
    if kind == "aws_subnet":
        network.subnets[me] = str(plan.value(address, values, "vpc_id") or "vpc")
    elif kind == "aws_route_table":
        routes = network.tables.setdefault(me, [])
        for index, route in enumerate(values.get("route") or []):
            target = next((plan.value(address, values, "route", index, k) for k in ROUTE_TARGETS
                           if plan.value(address, values, "route", index, k)), None)
            routes.append(Route(str(route.get("cidr_block") or ""), str(target or "blackhole"),
                                "active" if target else "blackhole"))
    elif kind == "aws_route":
        table = str(plan.value(address, values, "route_table_id") or "")
        target = next((plan.value(address, values, k) for k in ROUTE_TARGETS if plan.value(address, values, k)), None)
        network.tables.setdefault(table, []).append(Route(str(values.get("destination_cidr_block") or ""),
                                                          str(target or "blackhole"),
                                                          "active" if target else "blackhole"))
    elif kind == "aws_route_table_association":
        subnet, table = plan.value(address, values, "subnet_id"), plan.value(address, values, "route_table_id")
        if isinstance(subnet, str) and isinstance(table, str):
            network.associations[subnet] = table
    elif kind == "aws_nat_gateway":
        network.nats[me] = (str(plan.value(address, values, "subnet_id") or ""),
                            str(values.get("connectivity_type") or "public"))
    elif kind == "aws_vpc_endpoint":
        tables = plan.value(address, values, "route_table_ids") or []
        network.endpoints.append(VpcEndpoint(me, str(values.get("service_name") or "").rsplit(".", 1)[-1],
                                             str(values.get("vpc_endpoint_type") or "Gateway"),
                                             tuple(tables if isinstance(tables, list) else [tables])))


def _code(plan: Plan, values: dict[str, Any], fn: TemplateFunction) -> None:
    filename = values.get("filename")
    local, note = local_code(plan.path, filename, "filename") if isinstance(filename, str) else (None, "")
    if local is not None:
        fn.snapshot.code_size = zipped_size(local, code_root(plan.path))
    elif filename:
        fn.notes.append(note or f"filename {filename} is not read")
    elif values.get("package_type", "Zip") == "Zip":
        fn.notes.append("the code is in S3 (package-size counts only local code)")
    fn.snapshot.layers = tuple(Layer(str(arn), 0) for arn in values.get("layers") or [])


def _function(links: _Links, address: str, values: dict[str, Any]) -> TemplateFunction:
    plan = links.plan
    name = str(values.get("function_name") or address.split(".")[-1])
    snapshot = FunctionSnapshot(FunctionRef(name, ACCOUNT, REGION))
    fn = TemplateFunction(snapshot, address, str(plan.path), plan.line_of(address), language="terraform")
    snapshot.runtime = str(values.get("runtime") or "")
    snapshot.timeout_s = int(values.get("timeout") or 3)
    snapshot.memory_mb = int(values.get("memory_size") or 128)
    snapshot.package_type = str(values.get("package_type") or "Zip")
    snapshot.architectures = tuple(values.get("architectures") or ("x86_64",))
    # what decides whether SnapStart applies (cold-start-latency)
    snapshot.snapstart = str(((values.get("snap_start") or [{}])[0] or {}).get("apply_on") or "None")
    snapshot.ephemeral_mb = int(((values.get("ephemeral_storage") or [{}])[0] or {}).get("size") or 512)
    snapshot.efs = bool(values.get("file_system_config"))
    snapshot.tags = {str(k): str(v) for k, v in (values.get("tags") or {}).items()}
    environment = (values.get("environment") or [{}])[0] or {}
    snapshot.env = {str(k): str(v) if v is not None else f"<{k}>"
                    for k, v in (environment.get("variables") or {}).items()}
    reserved = values.get("reserved_concurrent_executions")
    snapshot.reserved_concurrency = int(reserved) if isinstance(reserved, int) and reserved >= 0 else None
    subnets = plan.value(address, values, "vpc_config", 0, "subnet_ids") or []
    snapshot.subnet_ids = tuple(str(s) for s in (subnets if isinstance(subnets, list) else [subnets]))
    _code(plan, values, fn)
    for mapping, path in links.mappings.get(address, []):
        snapshot.mappings += (mapping,)
        fn.lines[f"mapping:{mapping.uuid}"], fn.mapping_paths[mapping.uuid] = plan.line_of(mapping.uuid), path
    snapshot.routes = tuple(links.routes.get(address, []))
    snapshot.triggers = tuple(links.triggers.get(address, []))
    snapshot.provisioned = tuple(links.provisioned.get(address, []))
    snapshot.function_url = "function URL" if address in links.urls else ""
    role = plan.target(address, values, "role", ("aws_iam_role",))
    snapshot.role_policies = tuple(links.role_policies.get(role or "", []))
    fn.notes += links.unknown_policies.get(role or "", []) if role else [
        "the execution role is not in the plan (recursive-trigger cannot read it)"]
    if not role or links.unknown_policies.get(role):  # part of what it may call is unknown
        snapshot.role_policies += (RolePolicy(str(role or "the execution role"), UNREAD_POLICY, {}),)
    snapshot.network = links.network.facts(snapshot.subnet_ids)
    if snapshot.subnet_ids and snapshot.network is None:
        fn.notes.append("its subnets' routes are not in the plan (vpc-no-egress not evaluated)")
    snapshot.vpc_id = snapshot.network.vpc_id if snapshot.network else ""
    snapshot.loaded = {"routes", "mappings", "triggers", "role_policies", "network", "urls", "provisioned",
                       "concurrency"}
    return fn


def read_plan(path: Path, document: dict[str, Any]) -> list[TemplateFunction]:
    """Every ``aws_lambda_function`` of a plan, as ``TemplateFunction``s."""
    if not isinstance(document.get("planned_values", {}), dict):
        raise TemplateError(str(path), 1, "planned_values is not an object: not a Terraform plan")
    try:
        plan = Plan(document, path)
        links = _Links(plan)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise TemplateError(str(path), 1, f"cannot read the plan's resources: {type(exc).__name__}: {exc}") from None
    functions = []
    for address, values in plan.of_type("aws_lambda_function"):
        try:
            functions.append(_function(links, address, values))
        except (AttributeError, TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
            raise TemplateError(str(path), plan.line_of(address),
                                f"cannot read {address}: {type(exc).__name__}: {exc}") from None
    return functions
