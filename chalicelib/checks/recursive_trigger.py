"""recursive-trigger (footgun 4): the function can write to the resource that triggers it.

Triggers: S3 bucket notifications to the function, SQS / Kinesis / DynamoDB-stream mappings (enabled ones),
SNS subscriptions. Writes: what the execution role's inline and attached policies allow - s3:PutObject on
the keys the notification fires on (DeleteObject for ObjectRemoved events...), sqs:SendMessage on the queue,
kinesis:PutRecord(s) on the stream, dynamodb:PutItem / UpdateItem / BatchWriteItem on the stream's table,
sns:Publish on the topic - with wildcards in actions and resources, NotAction / NotResource, and explicit
Deny honoured (conditions are not evaluated: a conditional Allow still counts). Each invocation then writes
what triggers the next: the loop scales to the concurrency limit and the bill explodes within minutes.

Fix (approve): RecursiveLoop=Terminate, so Lambda stops the loops it can detect (where the recursion API is
available), and a reserved-concurrency cap that bounds the damage, never below the observed peak. Both are
undone together. The real fix is in the design: write to a different bucket / queue / table, or filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.checks.base import Check, Param, Params
from chalicelib.iam_eval import Verdict, can_perform
from chalicelib.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MetricQuery

WRITE_ACTIONS = {
    "sqs": ("sqs:SendMessage",),
    "kinesis": ("kinesis:PutRecord", "kinesis:PutRecords"),
    "dynamodb": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "sns": ("sns:Publish",),
}
S3_EVENT_ACTIONS = {
    "s3:ObjectCreated": ("s3:PutObject",),
    "s3:ObjectRemoved": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "s3:ObjectRestore": ("s3:RestoreObject",),
    "s3:ObjectTagging": ("s3:PutObjectTagging", "s3:DeleteObjectTagging"),
    "s3:ObjectAcl": ("s3:PutObjectAcl",),
}
ACTIVE_MAPPING_STATES = ("Enabled", "Enabling", "Creating", "Updating")


@dataclass(frozen=True)
class Loop:
    """A trigger the function can write to: ``label`` names it, ``verdict`` says which policy allows it."""

    label: str
    trigger: str
    verdict: Verdict


def metrics(params: Params) -> list[MetricQuery]:
    return [MetricQuery("ConcurrentExecutions", "Maximum", params["lookback_days"])]


def _s3_actions(events: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for event in events or ("s3:ObjectCreated:*",):
        for prefix, actions in S3_EVENT_ACTIONS.items():
            if event == "s3:*" or event.startswith(prefix):
                found.extend(a for a in actions if a not in found)
    return tuple(found)


def loops(snapshot: FunctionSnapshot) -> list[Loop]:
    """Every trigger of the function that its role lets it write to.

    Example:
        >>> from chalicelib.model import FunctionRef, RolePolicy, Trigger
        >>> doc = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::up/*"}]}
        >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"),
        ...     triggers=(Trigger("s3", "arn:aws:s3:::up", ("s3:ObjectCreated:*",), "in/"),),
        ...     role_policies=(RolePolicy("w", "inline", doc),))
        >>> loops(fn)[0].label
        's3://up/in/'
    """
    policies = [(p.name if p.source == "inline" else f"{p.name} ({p.source})", p.document)
                for p in snapshot.role_policies]
    candidates: list[tuple[str, str, tuple[str, ...], str]] = []
    for mapping in snapshot.mappings:
        kind = mapping.source_kind
        if kind not in WRITE_ACTIONS or mapping.state not in ACTIVE_MAPPING_STATES:
            continue
        if kind == "dynamodb":
            table = mapping.source_arn.split("/stream/", 1)[0]
            candidates.append((f"DynamoDB table {table.rsplit('/', 1)[-1]}", table, WRITE_ACTIONS[kind],
                               f"its stream (mapping {mapping.uuid})"))
        elif kind == "kinesis":
            stream = mapping.source_arn.split("/consumer/", 1)[0]
            candidates.append((f"Kinesis stream {stream.rsplit('/', 1)[-1]}", stream, WRITE_ACTIONS[kind],
                               f"mapping {mapping.uuid}"))
        else:
            candidates.append((f"SQS queue {mapping.source_name}", mapping.source_arn, WRITE_ACTIONS[kind],
                               f"mapping {mapping.uuid}"))
    for trigger in snapshot.triggers:
        if trigger.kind == "s3":
            bucket = trigger.source_arn.split(":::", 1)[-1]
            target = f"{trigger.source_arn}/{trigger.prefix}*{trigger.suffix}"
            events = ", ".join(trigger.events) or "notification"
            candidates.append((f"s3://{bucket}/{trigger.prefix}", target, _s3_actions(trigger.events), events))
        elif trigger.kind == "sns":
            candidates.append((f"SNS topic {trigger.source_name}", trigger.source_arn, WRITE_ACTIONS["sns"],
                               "subscription"))
    found = []
    for label, target, actions, how in candidates:
        verdict = can_perform(policies, actions, target)
        if verdict.allowed:
            found.append(Loop(label, how, verdict))
    return found


def _fix(snapshot: FunctionSnapshot, params: Params) -> tuple[FixSpec | None, str]:
    """The fix (None when nothing is left to change) and the sentence that describes it."""
    if not {"concurrency", "recursion"} <= snapshot.loaded:
        return None, ""
    change: dict[str, object] = {}
    prior: dict[str, object] = {}
    notes = []
    if "recursion" in snapshot.unavailable:
        notes.append(f"RecursiveLoop=Terminate: unavailable ({snapshot.unavailable['recursion']})")
    elif snapshot.recursive_loop != "Terminate":
        change["RecursiveLoop"], prior["RecursiveLoop"] = "Terminate", snapshot.recursive_loop
        notes.append(f"set RecursiveLoop=Terminate (now {snapshot.recursive_loop})")
    else:
        notes.append("RecursiveLoop is already Terminate, but it stops only some loops, after ~16 invocations")
    peak = snapshot.metrics.get(metrics(params)[0])
    cap = max(params["max_concurrency"], math.ceil((peak or 0) * params["headroom"]))
    reserved = snapshot.reserved_concurrency
    if reserved is not None and reserved <= cap:
        notes.append(f"reserved concurrency already caps it at {reserved}")
    else:
        change["ReservedConcurrentExecutions"], prior["ReservedConcurrentExecutions"] = cap, reserved
        seen = f"peak {math.ceil(peak)}" if peak is not None else "no concurrency data"
        notes.append(f"cap reserved concurrency at {cap} ({seen}{f', now {reserved}' if reserved else ''})")
    text = " Fix: " + "; ".join(notes) + "."
    if not change:
        return None, text
    return FixSpec("stop-recursive-loop", snapshot.arn, change, prior), text


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding naming every loop ("fn → writes X → triggers fn"); the fix needs the follow-up facets.

    Example:
        >>> from chalicelib.model import EventSourceMapping, FunctionRef, RolePolicy
        >>> m = EventSourceMapping("u1", "arn:aws:sqs:us-east-1:123456789012:jobs", "", 10, (), "Enabled")
        >>> doc = {"Statement": [{"Effect": "Allow", "Action": "sqs:Send*", "Resource": "*"}]}
        >>> fn = FunctionSnapshot(FunctionRef("worker", "123456789012", "us-east-1"), mappings=(m,),
        ...                       role_policies=(RolePolicy("send", "inline", doc),))
        >>> evaluate(fn, {"max_concurrency": 10, "headroom": 1.5, "lookback_days": 14}, AccountFacts())[0].message[:54]
        'worker → writes SQS queue jobs → triggers worker (mapp'
    """
    found = loops(snapshot)
    if not found:
        return []
    name = snapshot.name
    chains = "; ".join(
        f"{name} → writes {loop.label} → triggers {name} ({loop.trigger}; {loop.verdict.action} allowed by "
        f"{loop.verdict.policy}{', under a condition' if loop.verdict.conditional else ''})" for loop in found)
    fix, fix_text = _fix(snapshot, params)
    message = (f"{chains}. A recursive loop scales to the concurrency limit and the bill explodes within minutes; "
               f"write to a different resource, or filter what triggers the function.{fix_text}")
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message, fix=fix,
        evidence={"loops": [{"resource": loop.label, "trigger": loop.trigger, "action": loop.verdict.action,
                             "policy": loop.verdict.policy} for loop in found]},
    )]


CHECK = Check(
    id="recursive-trigger",
    footgun="4",
    title="Function can write to the resource that triggers it",
    doc=__doc__ or "",
    default_mode="approve",
    default_severity="critical",
    evaluate=evaluate,
    params=(
        Param(
            "max_concurrency",
            int,
            10,
            "Reserved-concurrency cap proposed to bound a loop (raised to the "
            "observed peak x headroom, never below it).",
            minimum=1,
            maximum=1000,
        ),
        Param("headroom", float, 1.5, "Multiplier over the observed peak for the cap.", minimum=1.0, maximum=10.0),
        Param(
            "lookback_days",
            int,
            14,
            "Days of ConcurrentExecutions history to take the peak from.",
            minimum=1,
            maximum=63,
        ),
    ),
    needs=frozenset({"mappings", "triggers", "role_policies"}),
    finding_needs=frozenset({"concurrency", "recursion", "metrics"}),
    metrics=metrics,
    fix_actions=("stop-recursive-loop",),
    read_permissions=(
        "lambda:ListEventSourceMappings",
        "lambda:GetPolicy",
        "lambda:GetFunction",
        "lambda:GetFunctionRecursionConfig",
        "s3:ListAllMyBuckets",
        "s3:GetBucketNotification",
        "sns:ListSubscriptions",
        "sns:ListSubscriptionsByTopic",
        "iam:GetAccountAuthorizationDetails",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "cloudwatch:GetMetricData",
    ),
    triggers=frozenset(
        (
            "UpdateFunctionConfiguration:role",
            "CreateEventSourceMapping",
            "UpdateEventSourceMapping",
            "AddPermission",
            "PutFunctionRecursionConfig",
        )
    ),
)
