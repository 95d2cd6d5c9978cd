"""Resolve CloudFormation intrinsics to stand-in values that name the template's own resources.

Before deploy nothing has an ARN yet, so each resource gets a stand-in identity built from its literal name
(``QueueName``, ``BucketName``...) or its logical id, in a placeholder account and region. ``Ref``,
``Fn::GetAtt`` and ``Fn::Sub`` then resolve to the same stand-in everywhere: the queue a function is
triggered by and the queue its policy lets it write to compare equal exactly when they are the same logical
resource. ``{{resolve:...}}`` dynamic references stay as they are: references, never values.

Example:
    >>> r = Resolver({"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {}}})
    >>> r.value({"Fn::GetAtt": ["Jobs", "Arn"]})
    'arn:aws:sqs:us-east-1:000000000000:Jobs'
    >>> r.value({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"})
    'arn:aws:s3:::${Bucket}/*'
    >>> r.logical_id({"Fn::GetAtt": "Jobs.Arn"})
    'Jobs'
"""

from __future__ import annotations

import re
from typing import Any

ACCOUNT = "000000000000"  # placeholder: nothing is deployed yet
REGION = "us-east-1"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
          "AWS::StackName": "stack", "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/stack/id",
          "AWS::NoValue": None}
NAME_PROPERTIES = ("QueueName", "TopicName", "BucketName", "TableName", "StreamName", "FunctionName", "RoleName",
                   "Name")
EC2_PREFIXES = {"AWS::EC2::Subnet": "subnet", "AWS::EC2::RouteTable": "rtb", "AWS::EC2::NatGateway": "nat",
                "AWS::EC2::InternetGateway": "igw", "AWS::EC2::VPC": "vpc", "AWS::EC2::VPCEndpoint": "vpce",
                "AWS::EC2::TransitGateway": "tgw", "AWS::EC2::VPNGateway": "vgw",
                "AWS::EC2::VPCPeeringConnection": "pcx", "AWS::EC2::NetworkInterface": "eni",
                "AWS::EC2::Instance": "i", "AWS::EC2::SecurityGroup": "sg"}
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")
# an API Gateway integration URI that invokes a function (buffered or streamed): the function's ARN inside it
_INVOCATION_URI = re.compile(r"^arn:aws[a-z-]*:apigateway:[^:]*:lambda:path/[^/]+/functions/(?P<fn>.+?)"
                             r"(?::\$\{stageVariables\.[^}]+\})?/(?:response-streaming-)?invocations$")


def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _identities(logical: str, kind: str, name: str) -> dict[str, str]:
    """``Ref`` (key ``""``) and the attributes of one resource type, as stand-ins."""
    if kind == "AWS::SQS::Queue":
        arn = _arn("sqs", name)
        return {"": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}", "Arn": arn, "QueueName": name,
                "QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"}
    if kind == "AWS::SNS::Topic":
        return {"": _arn("sns", name), "TopicArn": _arn("sns", name), "TopicName": name}
    if kind == "AWS::S3::Bucket":
        return {"": name, "Arn": f"arn:aws:s3:::{name}"}
    if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
        table = _arn("dynamodb", f"table/{name}")
        return {"": name, "Arn": table, "StreamArn": f"{table}/stream/1970-01-01T00:00:00.000"}
    if kind == "AWS::Kinesis::Stream":
        return {"": name, "Arn": _arn("kinesis", f"stream/{name}")}
    if kind in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
        return {"": name, "Arn": _arn("lambda", f"function:{name}")}
    if kind == "AWS::IAM::Role":
        return {"": name, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    if kind == "AWS::SecretsManager::Secret":
        return {"": _arn("secretsmanager", f"secret:{name}")}
    if kind in EC2_PREFIXES:
        return {"": f"{EC2_PREFIXES[kind]}-{logical}"}
    return {"": name}


MAX_DEPTH = 100
MAX_VISITS = 2_000_000


class TooComplex(ValueError):
    """A template whose values cannot be resolved within the bounds (a loop, exponential aliases)."""


class Resolver:
    """Resolves intrinsic functions over one template's ``Resources`` (and ``Parameters`` defaults)."""

    def __init__(self, resources: dict[str, Any], parameters: dict[str, Any] | None = None,
                 mappings: dict[str, Any] | None = None) -> None:
        self.resources = resources if isinstance(resources, dict) else {}
        self.parameters = parameters if isinstance(parameters, dict) else {}
        self.mappings = mappings if isinstance(mappings, dict) else {}
        self._depth = self._visits = 0

    def name_of(self, logical: str) -> str:
        """The physical name a resource declares (a literal, a parameter's ``Ref`` or a ``Fn::Sub`` of parameters
        and pseudo parameters, as the event and the policy naming it through the same parameter resolve it),
        else its logical id."""
        props = self.properties(logical)
        for key in NAME_PROPERTIES:
            if isinstance(props.get(key), str):
                return str(props[key])
            if (named := self._parameter_name(props.get(key))) is not None:
                return named
        return logical

    def _parameter_name(self, node: Any) -> str | None:
        if not isinstance(node, dict) or len(node) != 1:
            return None
        (key, arg), = node.items()
        if key == "Ref" and isinstance(arg, str) and arg in self.parameters:
            return str(self.ref(arg))
        if key == "Fn::Sub" and isinstance(arg, str):
            names = [m.strip() for m in _SUB_VARIABLE.findall(arg)]
            if names and all(n in self.parameters or n in PSEUDO for n in names):
                return str(_sub(self, arg))
        return None

    def properties(self, logical: str) -> dict[str, Any]:
        resource = self.resources.get(logical)
        props = resource.get("Properties") if isinstance(resource, dict) else None
        return props if isinstance(props, dict) else {}

    def type_of(self, logical: str) -> str:
        resource = self.resources.get(logical)
        return str(resource.get("Type", "")) if isinstance(resource, dict) else ""

    def ref(self, name: str) -> Any:
        """``Ref``: a pseudo parameter, a parameter (its default, else a ``<Name>`` placeholder), a resource."""
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            param = self.parameters[name] if isinstance(self.parameters[name], dict) else {}
            default = param.get("Default")
            return str(default) if default is not None and not isinstance(default, (dict, list)) else f"<{name}>"
        if name in self.resources:
            return _identities(name, self.type_of(name), self.name_of(name))[""]
        return f"<{name}>"

    def get_att(self, logical: str, attribute: str) -> str:
        if logical not in self.resources:
            return f"<{logical}.{attribute}>"
        found = _identities(logical, self.type_of(logical), self.name_of(logical))
        return found.get(attribute, f"<{logical}.{attribute}>")

    def value(self, node: Any) -> Any:
        """The node with every intrinsic resolved (lists and mappings recursively); ``None`` for AWS::NoValue.
        Bounded: nesting deeper than ``MAX_DEPTH`` (a ``FindInMap`` loop) or more than ``MAX_VISITS`` values in
        one template (aliases multiplying a node) raise ``TooComplex``."""
        self._visits += 1
        if self._visits > MAX_VISITS:
            raise TooComplex(f"more than {MAX_VISITS:,} values to resolve (YAML aliases multiplying a node?)")
        if self._depth >= MAX_DEPTH:
            raise TooComplex(f"values nested more than {MAX_DEPTH} deep (an intrinsic that refers to itself?)")
        self._depth += 1
        try:
            return self._value(node)
        finally:
            self._depth -= 1

    def _value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not None]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            handler = _FUNCTIONS.get(str(key))
            if handler is not None:
                return handler(self, arg)
        return {str(k): v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not None}

    def text(self, node: Any) -> str | None:
        """The resolved node when it is a string (or a number, as CloudFormation passes it), else None."""
        value = self.value(node)
        if isinstance(value, bool):
            return str(value).lower()
        return str(value) if isinstance(value, (str, int, float)) else None

    def logical_id(self, node: Any) -> str | None:
        """The template resource a value points at: ``Ref X``, ``GetAtt X.Attr``, ``Sub '${X.Arn}'`` or a
        literal equal to a resource's stand-in identity or declared name."""
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" and isinstance(arg, str) and arg in self.resources:
                return arg
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                if isinstance(parts, list) and parts and parts[0] in self.resources:
                    return str(parts[0])
            if key == "Fn::Sub":
                template = arg[0] if isinstance(arg, list) and arg else arg
                variables = arg[1] if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict) else {}
                names = {m.split(".", 1)[0].strip() for m in _SUB_VARIABLE.findall(str(template))}
                found = {self.logical_id(variables[n]) if n in variables else n for n in names}
                found = {n for n in found if n in self.resources}
                if len(found) == 1:
                    return found.pop()
        text = self.text(node)
        if text and (invocation := _INVOCATION_URI.match(text)):  # Fn::Join / Fn::Sub building the URI
            text = invocation["fn"]
        return self.find(text) if text else None

    def find(self, text: str) -> str | None:
        """The resource whose stand-in identity (or declared name) is ``text``."""
        for logical in self.resources:
            ids = _identities(logical, self.type_of(logical), self.name_of(logical))
            if text in ids.values() or text == self.name_of(logical) != logical:
                return logical
        return None


def _ref(resolver: Resolver, arg: Any) -> Any:
    return resolver.ref(str(arg))


def _get_att(resolver: Resolver, arg: Any) -> Any:
    parts = arg.split(".", 1) if isinstance(arg, str) else arg
    if not isinstance(parts, list) or len(parts) != 2:
        return None
    attribute = resolver.text(parts[1]) or ""
    return resolver.get_att(str(parts[0]), attribute)


def _sub(resolver: Resolver, arg: Any) -> Any:
    template, variables = (arg[0], arg[1]) if isinstance(arg, list) and len(arg) == 2 else (arg, {})
    if not isinstance(template, str):
        return None
    variables = variables if isinstance(variables, dict) else {}

    def replace(match: re.Match[str]) -> str:
        name = match[1].strip()
        if name in variables:
            value = resolver.text(variables[name])
        elif "." in name and name.split(".", 1)[0] in resolver.resources:
            value = resolver.get_att(*name.split(".", 1))
        elif name in resolver.resources or name in resolver.parameters or name in PSEUDO:
            value = resolver.text({"Ref": name})
        else:
            value = None
        return value if value is not None else match[0]

    return _SUB_VARIABLE.sub(replace, template).replace("${!", "${")


def _join(resolver: Resolver, arg: Any) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        return None
    items = resolver.value(arg[1])
    if not isinstance(items, list):
        return None
    return str(arg[0]).join(str(i) for i in items)


def _select(resolver: Resolver, arg: Any) -> Any:
    if isinstance(arg, list) and len(arg) == 2:
        items, index = resolver.value(arg[1]), resolver.text(arg[0])
        if isinstance(items, list) and index is not None and index.isdigit() and int(index) < len(items):
            return items[int(index)]
    return None


def _find_in_map(resolver: Resolver, arg: Any) -> Any:
    if isinstance(arg, list) and len(arg) >= 3:
        keys = [resolver.text(k) for k in arg[:3]]
        node: Any = resolver.mappings
        for key in keys:
            node = node.get(key) if isinstance(node, dict) and key is not None else None
        return resolver.value(node)
    return None


def _first_branch(resolver: Resolver, arg: Any) -> Any:
    """``Fn::If``: conditions are not evaluated before deploy; the true branch is taken."""
    return resolver.value(arg[1]) if isinstance(arg, list) and len(arg) == 3 else None


def _unknown(resolver: Resolver, arg: Any) -> Any:
    return "<imported>"


_FUNCTIONS = {"Ref": _ref, "Fn::GetAtt": _get_att, "Fn::Sub": _sub, "Fn::Join": _join, "Fn::Select": _select,
              "Fn::FindInMap": _find_in_map, "Fn::If": _first_branch, "Fn::ImportValue": _unknown,
              "Fn::GetAZs": lambda resolver, arg: [f"{REGION}a", f"{REGION}b"],
              "Fn::Split": lambda resolver, arg: (str(resolver.text(arg[1]) or "").split(str(arg[0]))
                                                  if isinstance(arg, list) and len(arg) == 2 else None),
              "Fn::Base64": lambda resolver, arg: resolver.value(arg)}
