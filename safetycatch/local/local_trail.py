"""The embedded default's event path: what CloudTrail and EventBridge do in an account, done locally.

moto records no CloudTrail events and its EventBridge never receives "AWS API Call via CloudTrail" events, so on
the embedded default (``AWS_ENDPOINT_URL`` set, as in the demo) nothing would ever reach the bot. ``LocalTrail``
stands in for the trail and the bot's rules, and nothing more:

* it records the calls a boto3 client *really made* (botocore's ``before-parameter-build`` / ``after-call``
  hooks on the clients it is attached to): the operation, its parameters and AWS's answer. Failed calls and
  read-only calls are recorded as CloudTrail records them (``errorCode``, ``readOnly``) - the bot skips both;
* each record becomes the EventBridge event CloudTrail would deliver
  (``safetycatch.local.cloudtrail.api_call``: the envelope, ``userIdentity`` from the caller's STS identity,
  version-suffixed Lambda event names, ``requestParameters`` with CloudTrail's lowerCamel keys, an API Gateway body
  under ``<operation>Input``);
* ``deliver()`` hands each event to the handler whose rule pattern (``chalicelib.intake.events.CLOUDTRAIL_RULES``, the
  patterns of the deployed rules) matches it - matched by moto's implementation of EventBridge patterns - with
  the local bot's runtime: the same code the deployed ``on_config_change`` runs.

Only the clients it is attached to are recorded (the self-test's own), not the bot's writes: on AWS the bot's own
changes come back too and are skipped as its own (``self_role_patterns``). Delivery is at-once and in order;
CloudTrail's is within minutes and unordered, which is why the bot re-reads the function before deciding.

Example:
    trail = LocalTrail(account="123456789012", region="us-east-1", caller_arn="arn:aws:iam::123456789012:user/moto")
    trail.attach(boto3.client("lambda"))
    ...   # calls
    reports = trail.deliver(runtime)   # [{"event_id": ..., "skipped": ..., "findings": [...]}]
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

from safetycatch.local.cloudtrail import api_call

# The CloudTrail eventName of the Lambda operations, with their API version (Lambda API reference / CloudTrail
# log examples); an operation not listed is recorded without a suffix, as CloudTrail does for the newer APIs.
LAMBDA_EVENT_NAMES = {
    "CreateFunction": "CreateFunction20150331", "DeleteFunction": "DeleteFunction20150331",
    "UpdateFunctionConfiguration": "UpdateFunctionConfiguration20150331v2",
    "UpdateFunctionCode": "UpdateFunctionCode20150331v2", "AddPermission": "AddPermission20150331v2",
    "RemovePermission": "RemovePermission20150331v2", "TagResource": "TagResource20170331v2",
    "UntagResource": "UntagResource20170331v2", "PutFunctionConcurrency": "PutFunctionConcurrency20171031",
    "DeleteFunctionConcurrency": "DeleteFunctionConcurrency20171031",
    "GetFunction": "GetFunction20150331v2", "GetFunctionConfiguration": "GetFunctionConfiguration20150331v2",
}
READ_ONLY = re.compile(r"^(Get|List|Describe)")
APIGATEWAY_PATH_KEYS = ("restApiId", "resourceId", "httpMethod", "stageName", "deploymentId")


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def _lower_camel(value: Any) -> Any:
    """CloudTrail's ``requestParameters`` / ``responseElements`` keys: the API's, first letter lower-cased."""
    if isinstance(value, dict):
        return {_camel(str(k)): _lower_camel(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_lower_camel(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return None  # a zip or a payload: CloudTrail never records the bytes
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def request_parameters(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """``requestParameters`` as CloudTrail records them for ``service``'s ``operation``.

    Example:
        >>> request_parameters("apigateway", "PutIntegration", {"restApiId": "a", "uri": "u", "type": "AWS_PROXY"})
        {'restApiId': 'a', 'putIntegrationInput': {'uri': 'u', 'type': 'AWS_PROXY'}}
    """
    recorded = _lower_camel(params)
    if service != "apigateway":
        return dict(recorded)
    path = {k: v for k, v in recorded.items() if k in APIGATEWAY_PATH_KEYS}
    body = {k: v for k, v in recorded.items() if k not in APIGATEWAY_PATH_KEYS}
    return {**path, **({f"{_camel(operation)}Input": body} if body else {})}


class LocalTrail:
    """CloudTrail and the bot's EventBridge rules for the clients it is attached to (see the module's docstring)."""

    def __init__(self, account: str, region: str, caller_arn: str) -> None:
        self.account, self.region, self.caller_arn = account, region, caller_arn
        self.pending: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []  # the handler's reports, in delivery order

    def attach(self, client: Any) -> Any:
        """Record every call ``client`` makes from now on; returns the client."""
        client.meta.events.register("before-parameter-build.*.*", self._remember)
        client.meta.events.register("after-call.*.*", self._record)
        return client

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["local_trail_params"] = dict(params)

    def _record(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any],
                **_: Any) -> None:
        service = model.service_model.service_name
        operation = model.name
        failed = not 200 <= int(getattr(http_response, "status_code", 500)) < 300
        error = str((parsed.get("Error") or {}).get("Code") or "Error") if failed else ""
        event = api_call(LAMBDA_EVENT_NAMES.get(operation, operation) if service == "lambda" else operation,
                         request_parameters(service, operation, context.get("local_trail_params") or {}),
                         None if failed else _lower_camel(parsed), service=service, account=self.account,
                         region=self.region, error_code=error)
        event["detail"].update(readOnly=bool(READ_ONLY.match(operation)), userIdentity=self._identity())
        self.pending.append(event)

    def _identity(self) -> dict[str, Any]:
        """``userIdentity`` of the caller, from its STS ARN (an assumed role's session issuer, or a user)."""
        match = re.match(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/(.+)$", self.caller_arn)
        if match:
            role = f"arn:{match[1]}:iam::{match[2]}:role/{match[3]}"
            return {"type": "AssumedRole", "arn": self.caller_arn, "accountId": match[2],
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": match[2],
                                                         "userName": match[3]}}}
        return {"type": "IAMUser", "arn": self.caller_arn, "accountId": self.account}

    def deliver(self, runtime: Any) -> list[dict[str, Any]]:
        """Hand every recorded event a bot rule matches to its handler (as EventBridge does); the reports."""
        from moto.events.models import EventPattern

        from chalicelib.bot import handlers
        from chalicelib.intake.events import CLOUDTRAIL_RULES

        rules = [EventPattern.load(json.dumps(p)) for p in CLOUDTRAIL_RULES.values()]
        reports = []
        events, self.pending = self.pending, []
        for event in events:
            if any(rule.matches_event(event) for rule in rules):  # type: ignore[arg-type]
                reports.append(handlers.on_cloudtrail_change(event, runtime=runtime))
        self.delivered += reports
        return reports
