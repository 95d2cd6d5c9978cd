"""recursive-trigger (footgun 4): the function can write to the resource that triggers it, directly or through
the chains AWS builds.

Direct triggers: S3 bucket notifications to the function, SQS / Kinesis / DynamoDB-stream mappings (enabled
ones), SNS subscriptions. Longer paths, up to three deliveries from the resource written to the function: an
S3 notification to an SNS topic or SQS queue, SNS to SQS, EventBridge rules (a bucket with EventBridge
notifications on, or a bus the function puts events on, when the rule's pattern can match them), EventBridge
pipes from queues and DynamoDB / Kinesis streams. A sweep reads the region's notifications, subscriptions,
rules and pipes once; an event follows the resource policies of the function, its queues and topics. The
message names the whole path (``f → writes s3://b/ → topic t → queue q → triggers f``).

Writes: what the execution role allows - s3:PutObject on the keys the notification fires on (DeleteObject for
ObjectRemoved events...), sqs:SendMessage on the queue, kinesis:PutRecord(s) on the stream, dynamodb:PutItem /
UpdateItem / BatchWriteItem on the stream's table, sns:Publish on the topic, events:PutEvents on the bus. The
local evaluator reads the role's inline and attached policies (wildcards, NotAction / NotResource, explicit
Deny; a conditional Allow still counts). For the writes it allows, IAM's own policy simulator
(SimulatePrincipalPolicy, which also applies permission boundaries and SCPs) has the last word where the call
is available; the message says which of the two decided. Each invocation then writes what triggers the next:
the loop scales to the concurrency limit and the bill explodes within minutes. Functions with a finding are in
the kill-switch's scope (runaway-loop).

Fix (approve): RecursiveLoop=Terminate, so Lambda stops the loops it can detect (where the recursion API is
available), and a reserved-concurrency cap that bounds the damage, never below the observed peak. Both are
undone together. The real fix is in the design: write to a different bucket / queue / table, or filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MetricQuery
from chalicelib.domain.iam_eval import Verdict, can_perform
from chalicelib.domain.loops import LOOP_EDGE_CHANGES, LOOP_PATH_CHANGES, Write, writes

LOCAL = "the local policy evaluator"
SIMULATOR = "IAM's policy simulator"


@dataclass(frozen=True)
class Loop:
    """A write that comes back to the function: ``verdict`` says which policy allows it, ``decided_by`` whose
    answer counted (IAM's policy simulator or the local evaluator, and why)."""

    write: Write
    verdict: Verdict
    decided_by: str = LOCAL

    @property
    def label(self) -> str:
        return self.write.label

    @property
    def trigger(self) -> str:
        return self.write.how


def metrics(params: Params) -> list[MetricQuery]:
    return [MetricQuery("ConcurrentExecutions", "Maximum", params["lookback_days"])]


def loops(snapshot: FunctionSnapshot) -> list[Loop]:
    """Every write that comes back to the function and that its role allows (IAM's answer where it was asked).

    Example:
        >>> from chalicelib.core.model import FunctionRef, RolePolicy, Trigger
        >>> doc = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::up/*"}]}
        >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"),
        ...     triggers=(Trigger("s3", "arn:aws:s3:::up", ("s3:ObjectCreated:*",), "in/"),),
        ...     role_policies=(RolePolicy("w", "inline", doc),))
        >>> loops(fn)[0].label
        's3://up/in/'
    """
    policies = [(p.name if p.source == "inline" else f"{p.name} ({p.source})", p.document)
                for p in snapshot.role_policies]
    found = []
    for write in writes(snapshot):
        verdict = can_perform(policies, write.actions, write.target)
        if verdict.allowed:
            decided_by, stands = iam_answer(snapshot, write, verdict)
            if stands:
                found.append(Loop(write, verdict, decided_by))
    return found


def iam_answer(snapshot: FunctionSnapshot, write: Write, verdict: Verdict) -> tuple[str, bool]:
    """Whose answer decides a write the local evaluator allows, and whether the loop stands: IAM's policy
    simulator where it answered; the local evaluator where it could not be asked, or where the simulator
    denied only for want of a condition's request context."""
    if "iam_simulation" not in snapshot.loaded:
        return LOCAL, True
    decision = snapshot.iam_decisions.get(write.key)
    if decision is None:
        why = snapshot.unavailable.get("iam_simulation", "not asked")
        return f"{LOCAL}: {why}", True
    if decision.decision == "allowed":
        return SIMULATOR, True
    if decision.blocked_by:
        return f"{SIMULATOR}: denied by {decision.blocked_by}", False
    if decision.missing_context and verdict.conditional:
        keys = ", ".join(decision.missing_context[:3])
        return f"{LOCAL}: the simulator had no value for {keys}", True
    return f"{SIMULATOR}: {decision.decision}", False


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


def describe(name: str, loop: Loop) -> str:
    """One loop in a line: ``f → writes X → (the path) → triggers f (how; which policy allows it; who decided)``."""
    route = "".join(f" → {station}" for station in loop.write.via)
    condition = ", under a condition" if loop.verdict.conditional else ""
    return (f"{name} → writes {loop.label}{route} → triggers {name} ({loop.trigger}; {loop.verdict.action} allowed "
            f"by {loop.verdict.policy}{condition}; decided by {loop.decided_by})")


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding naming every loop ("fn → writes X → ... → triggers fn"); the fix needs the follow-up facets.

    Example:
        >>> from chalicelib.core.model import EventSourceMapping, FunctionRef, RolePolicy
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
    chains = "; ".join(describe(snapshot.name, loop) for loop in found)
    fix, fix_text = _fix(snapshot, params)
    gaps = f" (Not followed: {snapshot.unavailable['chains']}.)" if "chains" in snapshot.unavailable else ""
    message = (f"{chains}. A recursive loop scales to the concurrency limit and the bill explodes within minutes; "
               f"write to a different resource, or filter what triggers the function.{fix_text}{gaps}")
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message, fix=fix,
        evidence={"loops": [{"resource": loop.label, "trigger": loop.trigger, "action": loop.verdict.action,
                             "policy": loop.verdict.policy, "decided_by": loop.decided_by,
                             "path": [loop.label, *loop.write.via, snapshot.name]} for loop in found]},
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
    needs=frozenset({"mappings", "triggers", "chains", "role_policies"}),
    finding_needs=frozenset({"concurrency", "recursion", "metrics", "iam_simulation"}),
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
        "sns:GetTopicAttributes",
        "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes",
        "events:ListEventBuses",
        "events:ListRules",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "pipes:ListPipes",
        "iam:SimulatePrincipalPolicy",
        "iam:GetAccountAuthorizationDetails",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "cloudwatch:GetMetricData",
    ),
    triggers=LOOP_PATH_CHANGES | LOOP_EDGE_CHANGES,
)
