"""What a function could write that comes back to invoke it (footgun 4): every write that closes a loop, direct
or through up to ``MAX_TRIGGER_HOPS`` deliveries, and the local IAM answer on each. Pure: no AWS calls.

Shared by the recursive-trigger check and the inventory's ``iam_simulation`` facet, which asks IAM's own
policy simulator about the writes the local evaluator allows.

Example:
    >>> from chalicelib.core.model import FunctionRef, FunctionSnapshot
    >>> hops = (Trigger("s3", "arn:aws:s3:::up", ("s3:ObjectCreated:*",), "in/",
    ...                 target_arn="arn:aws:sns:us-east-1:123456789012:fanout"),
    ...         Trigger("sns", "arn:aws:sns:us-east-1:123456789012:fanout",
    ...                 target_arn="arn:aws:sqs:us-east-1:123456789012:work"),
    ...         Trigger("sqs", "arn:aws:sqs:us-east-1:123456789012:work", target_arn="f"))
    >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), chains=(hops,))
    >>> write = writes(fn)[0]
    >>> write.label, write.via
    ('s3://up/in/', ('topic fanout', 'queue work'))
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chalicelib.core.model import FunctionSnapshot, Trigger
from chalicelib.domain import event_patterns

WRITE_ACTIONS = {
    "sqs": ("sqs:SendMessage",),
    "kinesis": ("kinesis:PutRecord", "kinesis:PutRecords"),
    "dynamodb": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "sns": ("sns:Publish",),
    "events": ("events:PutEvents",),
}
# the writes that put each kind of record on a table's stream
STREAM_RECORD_WRITES = {
    "INSERT": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "MODIFY": ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"),
    "REMOVE": ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem"),
}
S3_EVENT_ACTIONS = {
    "s3:ObjectCreated": ("s3:PutObject",),
    "s3:ObjectRemoved": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "s3:ObjectRestore": ("s3:RestoreObject",),
    "s3:ObjectTagging": ("s3:PutObjectTagging", "s3:DeleteObjectTagging"),
    "s3:ObjectAcl": ("s3:PutObjectAcl",),
}
ACTIVE_MAPPING_STATES = ("Enabled", "Enabling", "Creating", "Updating")
# the function changes that can open (or close) a loop path: what re-evaluates the loop policies
LOOP_PATH_CHANGES = frozenset({"UpdateFunctionConfiguration:role", "CreateEventSourceMapping",
                               "UpdateEventSourceMapping", "AddPermission", "PutFunctionRecursionConfig"})
# the changes around functions that can open a loop: what a role may write (IAM), and the deliveries between a
# write and a function (S3 notifications, SNS subscriptions, EventBridge rules and targets, pipes)
LOOP_EDGE_CHANGES = frozenset({"PutRolePolicy", "AttachRolePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion",
                               "PutBucketNotification", "Subscribe", "PutRule", "PutTargets", "CreatePipe",
                               "UpdatePipe"})


@dataclass(frozen=True)
class Write:
    """A write that would invoke the function again: ``label`` names what is written, ``target`` is the IAM
    resource (a pattern for S3 keys), ``how`` the trigger, ``via`` the resources between (empty: direct)."""

    label: str
    target: str
    actions: tuple[str, ...]
    how: str
    via: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What IAM is asked about (the same write reached by several paths is asked once)."""
        return self.target, self.actions


def s3_actions(events: tuple[str, ...]) -> tuple[str, ...]:
    """The object writes that raise these S3 event types (all object creations when none is given).

    Example:
        >>> s3_actions(("s3:ObjectRemoved:Delete",))
        ('s3:DeleteObject', 's3:DeleteObjectVersion')
    """
    found: list[str] = []
    for event in events or ("s3:ObjectCreated:*",):
        for prefix, actions in S3_EVENT_ACTIONS.items():
            if event in ("s3:*", "*") or event.startswith(prefix):
                found.extend(a for a in actions if a not in found)
    return tuple(found)


def _name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def stream_writes(filters: tuple[str, ...]) -> tuple[str, ...]:
    """The table writes whose stream records can pass a DynamoDB-stream mapping's ``FilterCriteria`` (patterns
    are OR'ed; a pattern on ``eventName`` keeps only those record kinds; one that needs ``userIdentity`` - the
    records of TTL deletions, made by DynamoDB itself - passes no write of a function). A pattern that cannot be
    read, or none, lets every write through.

    Example:
        >>> stream_writes(('{"eventName": ["REMOVE"]}',))
        ('dynamodb:DeleteItem', 'dynamodb:BatchWriteItem')
        >>> stream_writes(('{"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}',))
        ()
    """
    if not filters:
        return WRITE_ACTIONS["dynamodb"]
    found: list[str] = []
    for text in filters:
        try:
            pattern = json.loads(text)
        except ValueError:
            return WRITE_ACTIONS["dynamodb"]
        if not isinstance(pattern, dict):
            return WRITE_ACTIONS["dynamodb"]
        if "userIdentity" in pattern:
            continue  # only DynamoDB's own TTL deletions carry a userIdentity
        names = pattern.get("eventName")
        kinds = [n for n in names if isinstance(n, str)] if isinstance(names, list) else list(STREAM_RECORD_WRITES)
        if isinstance(names, list) and len(kinds) < len(names):  # content filters ({"prefix": ...}): any kind
            kinds = list(STREAM_RECORD_WRITES)
        for kind in kinds:
            found.extend(a for a in STREAM_RECORD_WRITES.get(kind, ()) if a not in found)
    return tuple(found)


def _source_write(kind: str, source: str, how: str, filters: tuple[str, ...] = ()) -> Write | None:
    """What is written to a queue / stream / table / topic source (the service named by its ARN for a pipe);
    None when the mapping's filters let no such write through."""
    service = kind if kind != "pipe" else (source.split(":")[2] if source.count(":") >= 5 else "")
    if service == "dynamodb":
        table = source.split("/stream/", 1)[0]
        actions = stream_writes(filters)
        return Write(f"DynamoDB table {_name(table)}", table, actions, how) if actions else None
    if service == "kinesis":
        stream = source.split("/consumer/", 1)[0]
        return Write(f"Kinesis stream {_name(stream)}", stream, WRITE_ACTIONS["kinesis"], how)
    if service == "sqs":
        return Write(f"SQS queue {_name(source)}", source, WRITE_ACTIONS["sqs"], how)
    if service == "sns":
        return Write(f"SNS topic {_name(source)}", source, WRITE_ACTIONS["sns"], how)
    return None


def head_write(hop: Trigger, how: str) -> Write | None:
    """What the function would write to start a delivery ``hop``; None when nothing it writes can (an
    EventBridge rule whose pattern takes only AWS service events, which PutEvents cannot send).

    Example:
        >>> head_write(Trigger("s3", "arn:aws:s3:::up", ("s3:ObjectCreated:Put",), "in/", ".csv"), "n").target
        'arn:aws:s3:::up/in/*.csv'
    """
    if hop.kind == "s3":
        bucket = hop.source_arn.split(":::", 1)[-1]
        return Write(f"s3://{bucket}/{hop.prefix}", f"{hop.source_arn}/{hop.prefix}*{hop.suffix}",
                     s3_actions(hop.events), how)
    if hop.kind == "events":
        if not event_patterns.custom_events_may_match(hop.pattern):
            return None
        return Write(f"event bus {_name(hop.source_arn)}", hop.source_arn, WRITE_ACTIONS["events"], how)
    return _source_write(hop.kind, hop.source_arn, how)


def stations(path: tuple[Trigger, ...]) -> tuple[str, ...]:
    """The resources and routes between the first write of ``path`` and the function it invokes.

    Example:
        >>> stations((Trigger("s3", "arn:aws:s3:::b", target_arn="arn:aws:events:us-east-1:1:event-bus/default"),
        ...           Trigger("events", "arn:aws:events:us-east-1:1:event-bus/default",
        ...                   id="arn:aws:events:us-east-1:1:rule/copy", target_arn="f")))
        ('bus default', 'rule copy')
    """
    found: list[str] = []
    for index, hop in enumerate(path):
        if hop.kind == "events":
            found.append(f"rule {_name(hop.id)}")
        elif hop.kind == "pipe":
            found.append(f"pipe {_name(hop.id)}")
        if index < len(path) - 1:
            found.append(_node(hop.target_arn))
    return tuple(found)


def _node(arn: str) -> str:
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    kind = {"sqs": "queue", "sns": "topic", "events": "bus", "kinesis": "stream"}.get(service, "resource")
    return f"{kind} {_name(arn)}"


def writes(snapshot: FunctionSnapshot) -> list[Write]:
    """Every write that would invoke the function again: its enabled mappings' sources, its S3 / SNS triggers,
    and the first resource of every longer delivery path (``snapshot.chains``)."""
    found: list[Write] = []
    for mapping in snapshot.mappings:
        if mapping.state in ACTIVE_MAPPING_STATES:
            how = f"its stream (mapping {mapping.uuid})" if mapping.source_kind == "dynamodb" else \
                f"mapping {mapping.uuid}"
            write = _source_write(mapping.source_kind, mapping.source_arn, how, mapping.filters)
            if write is not None:
                found.append(write)
    for trigger in snapshot.triggers:
        how = (", ".join(trigger.events) or "notification") if trigger.kind == "s3" else "subscription"
        write = head_write(trigger, how)
        if write is not None:
            found.append(write)
    for path in snapshot.chains:
        how = f"{len(path)} hop{'s' if len(path) > 1 else ''}"
        write = head_write(path[0], how)
        if write is not None:
            found.append(Write(write.label, write.target, write.actions, how, stations(path)))
    return found
