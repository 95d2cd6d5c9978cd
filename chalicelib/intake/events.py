"""EventBridge events in, ``Change`` (what changed, who did it) or ``Skip`` (why not to act) out.

The event only says *what* changed; the engine re-reads the function before deciding anything. Parsing is
total: any input, however malformed, gives a ``Change`` or a ``Skip`` and never raises.

Example:
    >>> from chalicelib.policy.settings import Settings
    >>> parse({"detail-type": "Scheduled Event", "detail": {}}, Settings()).reason
    'not a CloudTrail API call (Scheduled Event)'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.checks import REGISTRY, concerned
from chalicelib.checks.base import API_DEFINITION_CHANGES
from chalicelib.core.model import FunctionRef
from chalicelib.policy.settings import Settings

CLOUDTRAIL = "AWS API Call via CloudTrail"

# -- the one list of CloudTrail changes safetycatch reacts to ------------------------------------------------
# The bot's EventBridge rules (app.py), the us-east-1 rule that forwards IAM changes to a bot in another region
# and the member accounts' forwarding rules (safetycatch/build/member_template.py) are all built from WATCHED by
# ``cloudtrail_pattern``; ``parse`` accepts exactly these names. Add a change here and every rule follows.

# Lambda event names carry API-version suffixes (UpdateFunctionConfiguration20150331v2): the rules match these
# base names as prefixes (SUFFIXED); every other source's names are matched exactly.
LAMBDA_EVENTS: tuple[str, ...] = (
    "CreateFunction", "UpdateFunctionConfiguration", "UpdateFunctionCode", "PutFunctionConcurrency",
    "DeleteFunctionConcurrency", "CreateEventSourceMapping", "UpdateEventSourceMapping", "TagResource",
    "UntagResource", "AddPermission", "PutProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig", "PutFunctionRecursionConfig",
)
LAMBDA_EVENTS += ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig")  # a URL now fronts the function
APIGATEWAY_EVENTS: tuple[str, ...] = ("PutIntegration", "UpdateIntegration", "CreateIntegration",
                     # integration responses decide whether a Lambda error reaches clients as 200 (footgun 11)
                     "PutIntegrationResponse", "UpdateIntegrationResponse", "DeleteIntegrationResponse")
# A whole API written at once (OpenAPI bodies: SAM, Chalice, CDK SpecRestApi; HTTP API quick create with a
# target) or a route moved to another integration: every Lambda integration of that API is re-evaluated.
APIGATEWAY_EVENTS += API_DEFINITION_CHANGES
# Changes around functions that concern several of them: egress (VPC routing), recursion (writes, triggers).
EC2_EVENTS: tuple[str, ...] = ("CreateRoute", "ReplaceRoute", "DeleteRoute", "DeleteNatGateway", "AssociateRouteTable",
              "DisassociateRouteTable", "ReplaceRouteTableAssociation")
EC2_EVENTS += ("DetachInternetGateway", "DeleteInternetGateway")  # a NAT's (or a public subnet's) way out
# What an execution role may write: its inline and attached policies, and a new default version of a managed
# policy it attaches. Removing a permission (DeleteRolePolicy, DetachRolePolicy) cannot start a loop: not watched.
IAM_EVENTS = ("PutRolePolicy", "AttachRolePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion")
# S3's PutBucketNotificationConfiguration API is recorded by CloudTrail as PutBucketNotification.
S3_EVENTS = ("PutBucketNotification",)
# Loop edges (recursive-trigger): a topic subscription, an EventBridge rule or its targets, a pipe.
SNS_EVENTS = ("Subscribe",)
EVENTBRIDGE_EVENTS = ("PutRule", "PutTargets")
PIPES_EVENTS = ("CreatePipe", "UpdatePipe")
# Each source's own names: a rule matches a name only from its source (API Gateway's TagResource is not Lambda's).
WATCHED = {"aws.lambda": LAMBDA_EVENTS, "aws.apigateway": APIGATEWAY_EVENTS, "aws.ec2": EC2_EVENTS,
           "aws.iam": IAM_EVENTS, "aws.s3": S3_EVENTS, "aws.sns": SNS_EVENTS, "aws.events": EVENTBRIDGE_EVENTS,
           "aws.pipes": PIPES_EVENTS}
SUFFIXED = frozenset({"aws.lambda"})
CONFIG_SOURCES = ("aws.apigateway", "aws.lambda")  # a change of one function: on_config_change
# a change around functions: on_dependency_change
DEPENDENCY_SOURCES = ("aws.ec2", "aws.events", "aws.iam", "aws.pipes", "aws.s3", "aws.sns")
GLOBAL_SOURCES = ("aws.iam",)  # CloudTrail records these in us-east-1 only, whatever region the bot runs in


def dependency_policies(event_name: str) -> tuple[str, ...]:
    """The policies a change around functions can affect: the checks that declare it among their ``triggers``.

    Example:
        >>> dependency_policies("DetachInternetGateway"), dependency_policies("Subscribe")
        (('vpc-no-egress',), ('recursive-trigger',))
    """
    return tuple(c.id for c in REGISTRY.values() if event_name in c.triggers)


def cloudtrail_pattern(sources: Iterable[str] = tuple(WATCHED)) -> dict[str, Any]:
    """The EventBridge pattern of the watched CloudTrail changes of ``sources`` (successful calls only): one
    ``$or`` branch per source, each with that source's own event names only.

    Example:
        >>> cloudtrail_pattern(["aws.s3"])["detail"]["eventName"]
        ['PutBucketNotification']
        >>> cloudtrail_pattern(["aws.lambda"])["detail"]["eventName"][0]
        {'prefix': 'CreateFunction'}
        >>> [b["source"] for b in cloudtrail_pattern(["aws.sns", "aws.pipes"])["$or"]]
        [['aws.pipes'], ['aws.sns']]
    """
    chosen = sorted(set(sources))
    unknown = [s for s in chosen if s not in WATCHED]
    if unknown:
        raise ValueError(f"not a watched source: {', '.join(unknown)}")
    branches = [{"source": [source], "detail": {"eventName": _names(source), "errorCode": [{"exists": False}]}}
                for source in chosen]
    if len(branches) == 1:
        return {"source": branches[0]["source"], "detail-type": [CLOUDTRAIL], "detail": branches[0]["detail"]}
    return {"detail-type": [CLOUDTRAIL], "$or": branches}


def _names(source: str) -> list[Any]:
    """One source's event names as a pattern matches them: Lambda's as prefixes (version suffixes)."""
    return [{"prefix": n} if source in SUFFIXED else n for n in WATCHED[source]]


# The bot's own CloudTrail rules, by handler name (app.py subscribes them; ``safetycatch doctor`` checks them).
CLOUDTRAIL_RULES = {"on_config_change": cloudtrail_pattern(CONFIG_SOURCES),
                    "on_dependency_change": cloudtrail_pattern(DEPENDENCY_SOURCES)}

_SUFFIX = re.compile(r"^(?P<base>[A-Za-z]+?)(?:\d{8}(?:v\d+)?)?$")
_ASSUMED_ROLE = re.compile(r"^arn:(?P<p>aws[a-z-]*):sts::(?P<acct>\d{12}):assumed-role/(?P<role>[^/]+)/")
_INVOCATION_URI = re.compile(
    r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/[0-9-]+/functions/(?P<fn>[^/]+)/"
    r"(?:response-streaming-)?invocations$"  # a streamed integration's URI ends in response-streaming-invocations
)


@dataclass(frozen=True)
class Change:
    """A watched, successful, foreign change. ``function`` is None when it must be looked up:
    ``lookup`` is then ``("mapping", uuid)``, ``("rest-integration", api, resource, method)`` or
    ``("http-integration", api, integration_id)``, or for changes that concern several functions
    ``("route-table", id)``, ``("nat-gateway", id)``, ``("vpc",)`` (every VPC function),
    ``("role", name)``, ``("policy", arn)`` (the functions whose roles attach a managed policy) or
    ``("downstream", bucket, queue / topic ARN or "default-bus", ...)`` (the functions an S3 notification reaches
    through queues, topics and EventBridge rules). An integration event that names its function keeps its
    ``("rest-integration", ...)`` / ``("http-integration", ...)`` lookup beside it: the API it names is read for the
    function's routes (it may have just given the function an invocation role). ``functions`` lists the
    functions the event names when it names several (an S3 notification configuration); ``policies`` limits
    evaluation to the policies the change can affect (empty: all)."""

    event_id: str
    event_name: str
    source: str
    account: str
    region: str
    actor: str
    function: FunctionRef | None
    lookup: tuple[str, ...] = ()
    functions: tuple[FunctionRef, ...] = ()
    policies: tuple[str, ...] = ()
    identity: str = ""  # who made the call, as CloudTrail names it (the session's ARN), for people to read


@dataclass(frozen=True)
class Skip:
    """An event the bot must not act on, and why (shown in replay and logged)."""

    event_id: str
    event_name: str
    reason: str


Parsed = Change | Skip


def base_name(event_name: str) -> str:
    """Strip the API-version suffix: ``base_name("TagResource20170331v2") == "TagResource"``."""
    m = _SUFFIX.match(event_name)
    return m["base"] if m else event_name


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def event_id(event: Any) -> str:
    """The CloudTrail eventID when present (the idempotency key), else the EventBridge id."""
    return text(dig(event, "detail", "eventID")) or text(dig(event, "id"))


def actor_role(identity: Any) -> str:
    """The IAM role (or user) ARN behind ``userIdentity``: the session issuer for assumed roles."""
    issuer = text(dig(identity, "sessionContext", "sessionIssuer", "arn"))
    if issuer:
        return issuer
    arn = text(dig(identity, "arn"))
    if m := _ASSUMED_ROLE.match(arn):
        return f"arn:{m['p']}:iam::{m['acct']}:role/{m['role']}"
    return arn


def caller(identity: Any) -> str:
    """Who made the call, as precisely as CloudTrail says: the session ARN (``assumed-role/<role>/<session>``),
    else the user or role ARN, else the principal id / invoking service.

    Example:
        >>> caller({"arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci", "principalId": "AROA:ci"})
        'arn:aws:sts::123456789012:assumed-role/deploy/ci'
    """
    for value in (dig(identity, "arn"), dig(identity, "principalId"), dig(identity, "invokedBy")):
        if isinstance(value, str) and value:
            return value[:300]
    return actor_role(identity)


def function_from_uri(uri: Any, account: str, region: str) -> FunctionRef | None:
    """The function an API Gateway integration URI points at (REST invocation URI or bare ARN)."""
    if not isinstance(uri, str):
        return None
    if m := _INVOCATION_URI.match(uri):
        uri = m["fn"]
    return FunctionRef.parse(uri, account, region) if uri.startswith("arn:") else None


def parse(event: Any, settings: Settings) -> Parsed:
    """Turn one EventBridge event into a :class:`Change` or a :class:`Skip`. Never raises.

    Example:
        >>> import json
        >>> event = json.load(open("tests/events/lambda-UpdateFunctionConfiguration20150331v2.json"))
        >>> parse(event, Settings()).function.name
        'example-fn'
    """
    try:
        return _parse(event, settings)
    except Exception as exc:  # noqa: BLE001 - hostile input must never escape as an exception
        return Skip(event_id(event) if isinstance(event, dict) else "", "", f"malformed event ({type(exc).__name__})")


def _parse(event: Any, settings: Settings) -> Parsed:
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        return Skip(text(dig(event, "id")), "", "malformed event: no detail object")
    detail = event["detail"]
    eid, raw_name = event_id(event), text(detail.get("eventName"))
    ignored = _ignored(event, detail, settings)
    if ignored:
        return Skip(eid, raw_name, ignored)
    scope = _account_and_region(event, detail)
    if scope is None:
        return Skip(eid, raw_name, "malformed event: no account or region")
    name, source = base_name(raw_name), text(event.get("source"))
    change = Change(eid, name, source, *scope, actor_role(detail.get("userIdentity")), None,
                    identity=caller(detail.get("userIdentity")))
    target = {"aws.lambda": _lambda_target, "aws.apigateway": _apigateway_target}.get(source, _dependency_target)
    found = target(change, detail)
    if isinstance(found, str):
        return Skip(eid, raw_name, found)
    found = _own_account_only(found)
    if isinstance(found, str):
        return Skip(eid, raw_name, found)
    if source in ("aws.lambda", "aws.apigateway") and not found.policies:
        found = replace(found, policies=concerned(name, detail.get("requestParameters")))
    return found


def _ignored(event: dict[str, Any], detail: dict[str, Any], settings: Settings) -> str:
    """Why the event is no change for the bot to look at ('' when it is one): not a CloudTrail call, failed,
    read-only, not watched, or the bot's own."""
    kind, raw_name = text(event.get("detail-type")), text(detail.get("eventName"))
    if kind != CLOUDTRAIL:
        return f"not a CloudTrail API call ({kind[:80] or 'no detail-type'})"
    if not raw_name:
        return "malformed event: no eventName"
    if detail.get("errorCode"):
        return f"the call failed ({text(detail.get('errorCode'))[:80] or 'error'})"
    if detail.get("readOnly") is True:
        return "read-only call"
    source = text(event.get("source"))
    if base_name(raw_name) not in WATCHED.get(source, ()):
        return f"not a change safetycatch watches ({source or 'no source'})"
    actor = actor_role(detail.get("userIdentity"))
    if actor and settings.is_own_role(actor):
        return f"the bot's own change ({actor})"
    return ""


def _account_and_region(event: dict[str, Any], detail: dict[str, Any]) -> tuple[str, str] | None:
    """The envelope's account, or (a CloudTrail record without an envelope) the recipient's: never a fallback
    from an envelope account that is there but malformed; the region likewise. None when either is malformed."""
    account = text(event["account"]) if "account" in event else text(detail.get("recipientAccountId"))
    region = text(event.get("region")) or text(detail.get("awsRegion"))
    if not re.fullmatch(r"\d{12}", account) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        return None
    return account, region


def _own_account_only(change: Change) -> Change | str:
    """An event acts only on functions in its own account (the envelope's ``account``): a request naming another
    account's function (a full ARN) must not make the bot read or change that account."""
    named = [ref for ref in (change.function, *change.functions) if ref is not None]
    own = tuple(ref for ref in named if ref.account == change.account)
    if named and not own:
        return (f"the event from account {change.account} names a function in account {named[0].account}: "
                "not acting")
    if len(own) == len(named):
        return change
    return replace(change, function=own[0], functions=own if change.functions else ())


def _lambda_target(change: Change, detail: dict[str, Any]) -> Change | str:
    request, response = _section(detail, "requestParameters"), _section(detail, "responseElements")
    for candidate in (response.get("functionArn"), request.get("functionName"), request.get("resource"),
                      response.get("functionName")):
        if candidate is not None:
            ref = FunctionRef.parse(candidate, change.account, change.region)
            if ref:
                return _with(change, function=ref)
    uuid = request.get("uUID") or request.get("UUID") or response.get("uUID")
    if isinstance(uuid, str) and re.fullmatch(r"[0-9a-fA-F-]{36}", uuid):
        return _with(change, lookup=("mapping", uuid))
    return "no function named in the event"


def _apigateway_target(change: Change, detail: dict[str, Any]) -> Change | str:
    request, response = _section(detail, "requestParameters"), _section(detail, "responseElements")
    if change.event_name in API_DEFINITION_CHANGES:
        return _api_definition_target(change, request, response)
    rest_api, http_api = text(request.get("restApiId")), text(request.get("apiId"))
    if rest_api:
        uri = dig(request, "putIntegrationInput", "uri") or response.get("uri")
        resource, method = text(request.get("resourceId")), text(request.get("httpMethod"))
        lookup: tuple[str, ...] = ("rest-integration", rest_api, resource, method) if resource and method else ()
    elif http_api:
        uri = request.get("integrationUri") or response.get("integrationUri")
        integration = text(request.get("integrationId")) or text(response.get("integrationId"))
        lookup = ("http-integration", http_api, integration) if integration else ()
    else:
        return "no API id in the event"
    if isinstance(uri, str) and "${stageVariables." in uri:  # a function per stage: every stage is read
        return replace(change, function=None, lookup=("rest-api" if rest_api else "http-api", rest_api or http_api))
    if uri:  # the lookup stays with the function: the API it names is read for the function's routes
        ref = function_from_uri(uri, change.account, change.region)
        named = lookup or (("rest-integration", rest_api, resource, method) if rest_api else
                           ("http-integration", http_api, integration))
        return _with(change, function=ref, lookup=named) if ref else "the integration does not target a Lambda function"
    return _with(change, lookup=lookup) if lookup else "no integration named in the event"


_API_ID = re.compile(r"^[a-z0-9]{1,32}$")  # AWS: 10 characters


def _api_definition_target(change: Change, request: dict[str, Any], response: dict[str, Any]) -> Change | str:
    """A whole API written (OpenAPI import or put, quick create) or a route moved: ``("rest-api", id)`` or
    ``("http-api", id)``, every Lambda integration of that API. A new API's id is in the response only.

    Example:
        >>> c = Change("e", "ImportApi", "aws.apigateway", "123456789012", "us-east-1", "", None)
        >>> _api_definition_target(c, {"body": "{}"}, {"apiId": "a1b2c3d4e5"}).lookup
        ('http-api', 'a1b2c3d4e5')
    """
    rest = change.event_name in ("ImportRestApi", "PutRestApi")
    candidates = ([request.get("restApiId"), response.get("id"), dig(response, "self", "restApiId")] if rest
                  else [request.get("apiId"), response.get("apiId")])
    api = next((c for c in candidates if isinstance(c, str) and _API_ID.match(c)), "")
    target = function_from_uri(request.get("target"), change.account, change.region)  # quick create
    if not api:
        return _with(change, function=target) if target else "no API id in the event"
    return replace(change, function=None, lookup=("rest-api" if rest else "http-api", api))


def _section(detail: dict[str, Any], key: str) -> dict[str, Any]:
    """``requestParameters`` / ``responseElements`` as a dict (CloudTrail writes null for some calls)."""
    value = detail.get(key)
    return value if isinstance(value, dict) else {}


def _with(change: Change, function: FunctionRef | None = None, lookup: tuple[str, ...] = ()) -> Change:
    return replace(change, function=function, lookup=lookup)


_EC2_ID = {"route-table": re.compile(r"^rtb-[0-9a-f]{8,17}$"), "nat-gateway": re.compile(r"^nat-[0-9a-f]{8,17}$")}
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$")


def _dependency_target(change: Change, detail: dict[str, Any]) -> Change | str:
    """EC2 routing, IAM role policy and S3 notification changes: the functions they concern."""
    request = _section(detail, "requestParameters")
    concerns = dependency_policies(change.event_name)
    if change.source in _LOOP_EDGE_TARGETS:
        return _LOOP_EDGE_TARGETS[change.source](change, _lower_first(request), concerns)
    if change.source == "aws.ec2":
        # Newer EC2 APIs wrap the payload: {"DeleteNatGatewayRequest": {"NatGatewayId": ...}}.
        wrapped = request.get(f"{change.event_name}Request")
        request = _lower_first(wrapped if isinstance(wrapped, dict) else request)
        if change.event_name in ("DetachInternetGateway", "DeleteInternetGateway"):
            return _internet_gateway_target(change, request, concerns)
        if change.event_name == "DeleteNatGateway":
            kind, value = "nat-gateway", text(request.get("natGatewayId"))
        elif change.event_name == "DisassociateRouteTable":
            return replace(change, lookup=("vpc",), policies=concerns)
        else:
            kind, value = "route-table", text(request.get("routeTableId"))
        if not _EC2_ID[kind].match(value):
            return f"no {kind.replace('-', ' ')} id in the event"
        return replace(change, lookup=(kind, value), policies=concerns)
    if change.source == "aws.iam":
        return _iam_target(change, request, concerns)
    functions = _notified_functions(request, change.account, change.region)
    destinations = _notified_destinations(request)
    bucket = text(request.get("bucketName"))
    if destinations and _BUCKET.match(bucket):  # queues, topics, EventBridge: the functions they lead to
        return replace(change, function=functions[0] if functions else None, functions=functions,
                       lookup=("downstream", bucket, *destinations), policies=concerns)
    if not functions:
        return "the notification configuration invokes no Lambda function"
    return replace(change, function=functions[0], functions=functions, policies=concerns)


def _lower_first(request: dict[str, Any]) -> dict[str, Any]:
    """Request members with a lower-case first letter, as CloudTrail mostly logs them (``Target`` → ``target``)."""
    return {k[:1].lower() + k[1:]: v for k, v in request.items() if isinstance(k, str)}


_IGW = re.compile(r"^igw-[0-9a-f]{8,17}$")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")


def _internet_gateway_target(change: Change, request: dict[str, Any], concerns: tuple[str, ...]) -> Change | str:
    """An internet gateway detached from a VPC (``("vpc", id)``: that VPC's functions) or deleted
    (``("internet-gateway", id)``: the VPC it was attached to, if AWS still says; else every VPC function)."""
    vpc, gateway = text(request.get("vpcId")), text(request.get("internetGatewayId"))
    if change.event_name == "DetachInternetGateway" and _VPC.match(vpc):
        return replace(change, lookup=("vpc", vpc), policies=concerns)
    if _IGW.match(gateway):
        return replace(change, lookup=("internet-gateway", gateway), policies=concerns)
    return "no internet gateway or VPC id in the event"


_DELIVERY_TARGET = re.compile(r"^arn:aws[a-z-]*:(?:lambda|sqs|sns):[a-z0-9-]+:\d{12}:[\w.:-]{1,256}$")


def _deliveries(change: Change, arns: list[Any], concerns: tuple[str, ...], what: str) -> Change | str:
    """``("delivery", arn, ...)``: the functions, queues and topics a new loop edge delivers to (the functions
    they lead to are re-evaluated); the functions among them are named in ``functions`` too."""
    found = tuple(dict.fromkeys(a for a in arns if isinstance(a, str) and _DELIVERY_TARGET.match(a)))
    if not found:
        return f"the {what} delivers to no function, queue or topic"
    functions = tuple(ref for a in found if ":function:" in a
                      for ref in [FunctionRef.parse(a, change.account, change.region)] if ref)
    return replace(change, function=functions[0] if functions else None, functions=functions,
                   lookup=("delivery", *found), policies=concerns)


def _subscription_target(change: Change, request: dict[str, Any], concerns: tuple[str, ...]) -> Change | str:
    """SNS Subscribe: a topic now delivers to a function (protocol ``lambda``) or a queue (``sqs``)."""
    if text(request.get("protocol")).lower() not in ("lambda", "sqs"):
        return "the subscription delivers to no function or queue"
    return _deliveries(change, [request.get("endpoint")], concerns, "subscription")


def _rule_target(change: Change, request: dict[str, Any], concerns: tuple[str, ...]) -> Change | str:
    """EventBridge PutTargets names its targets; PutRule (a new pattern) is looked up: ``("rule", bus, name)``."""
    bus = text(request.get("eventBusName")) or "default"
    if change.event_name == "PutTargets":
        targets = request.get("targets")
        arns = [_lower_first(t).get("arn") for t in targets if isinstance(t, dict)] if isinstance(targets, list) else []
        return _deliveries(change, arns, concerns, "rule")
    name = text(request.get("name"))
    if not re.fullmatch(r"[\w.-]{1,64}", name) or not re.fullmatch(r"[\w.:/-]{1,1600}", bus):
        return "no rule name in the event"
    return replace(change, lookup=("rule", bus, name), policies=concerns)


def _pipe_target(change: Change, request: dict[str, Any], concerns: tuple[str, ...]) -> Change | str:
    """Pipes: the target (and an enrichment function) when the request names it, else ``("pipe", name)``."""
    named = [request.get("target"), request.get("enrichment")]
    if any(isinstance(a, str) and a for a in named):
        return _deliveries(change, named, concerns, "pipe")
    name = text(request.get("name"))
    if not re.fullmatch(r"[\w.-]{1,64}", name):
        return "no pipe name in the event"
    return replace(change, lookup=("pipe", name), policies=concerns)


_LOOP_EDGE_TARGETS = {"aws.sns": _subscription_target, "aws.events": _rule_target, "aws.pipes": _pipe_target}


def _iam_target(change: Change, request: dict[str, Any], concerns: tuple[str, ...]) -> Change | str:
    """A role's own policies changed (``("role", name)``), or a managed policy got a new default version, which
    every role attaching it now has (``("policy", arn)``)."""
    if change.event_name in ("CreatePolicyVersion", "SetDefaultPolicyVersion"):
        arn = text(request.get("policyArn"))
        if not _POLICY_ARN.match(arn):
            return "no customer managed policy ARN in the event"
        if change.event_name == "CreatePolicyVersion" and request.get("setAsDefault") is not True:
            return "the new policy version is not the default: nothing changes until SetDefaultPolicyVersion"
        return replace(change, lookup=("policy", arn), policies=concerns)
    role = text(request.get("roleName"))
    if not _ROLE_NAME.match(role):
        return "no role name in the event"
    return replace(change, lookup=("role", role), policies=concerns)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_DESTINATION = re.compile(r"^arn:aws[a-z-]*:(?:sqs|sns):[a-z0-9-]+:\d{12}:[\w.-]{1,256}$")


def _notified_destinations(request: dict[str, Any]) -> tuple[str, ...]:
    """The queues and topics an S3 notification configuration sends to, and ``default-bus`` when it turns
    EventBridge notifications on: deliveries that may lead on to functions (recursive-trigger follows them).

    Example:
        >>> _notified_destinations({"NotificationConfiguration": {"QueueConfiguration": {
        ...     "Queue": "arn:aws:sqs:us-east-1:123456789012:work"}, "EventBridgeConfiguration": ""}})
        ('arn:aws:sqs:us-east-1:123456789012:work', 'default-bus')
    """
    config = request.get("NotificationConfiguration")
    if not isinstance(config, dict):
        return ()
    found: list[str] = []
    for key, arn_key in (("QueueConfiguration", "Queue"), ("TopicConfiguration", "Topic")):
        items = config.get(key)
        for item in items if isinstance(items, list) else [items]:
            arn = item.get(arn_key) if isinstance(item, dict) else None
            if isinstance(arn, str) and _DESTINATION.match(arn) and arn not in found:
                found.append(arn)
    if "EventBridgeConfiguration" in config:
        found.append("default-bus")
    return tuple(found)


def _notified_functions(request: dict[str, Any], account: str, region: str) -> tuple[FunctionRef, ...]:
    """Functions in an S3 notification configuration as CloudTrail logs it: XML element names, and a
    single child as an object where several are a list."""
    config = request.get("NotificationConfiguration")
    if not isinstance(config, dict):
        return ()
    found: list[FunctionRef] = []
    for key, arn_key in (("CloudFunctionConfiguration", "CloudFunction"),
                         ("LambdaFunctionConfiguration", "LambdaFunctionArn")):
        items = config.get(key)
        for item in items if isinstance(items, list) else [items]:
            arn = item.get(arn_key) or item.get("Function") if isinstance(item, dict) else None
            ref = FunctionRef.parse(arn, account, region) if isinstance(arn, str) and arn.startswith("arn:") else None
            if ref and ref not in found:
                found.append(ref)
    return tuple(found)
