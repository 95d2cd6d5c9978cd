"""Can an EventBridge rule's event pattern match what a function writes? A conservative, pure evaluator.

For loop detection a miss is worse than a false alarm, so the answer is "may match" unless the pattern
certainly rejects the event. The event is partial: fields the caller does not know match anything. Two kinds
of write are described:

* an S3 object event the function causes by writing a bucket with EventBridge notifications on
  (``source`` aws.s3, ``detail-type`` such as "Object Created", ``detail.bucket.name``);
* a custom event the function sends with PutEvents, whose ``source`` is unknown except that it cannot start
  with ``aws.`` (reserved for AWS services: PutEvents answers NotAuthorizedForSourceException), written here as
  :data:`CUSTOM_SOURCE`.

Supported pattern syntax: exact values, ``prefix``, ``suffix``, ``anything-but``, ``equals-ignore-case``,
``wildcard``, ``exists``, ``numeric``, ``cidr`` (the last two only where the value is known) and ``$or``.

Example:
    >>> may_match('{"source": ["aws.s3"], "detail": {"bucket": {"name": ["uploads"]}}}',
    ...           s3_event("uploads", "Object Created"))
    True
    >>> may_match({"source": ["aws.ec2"]}, {"source": CUSTOM_SOURCE})
    False
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.core.model import Trigger

CUSTOM_SOURCE = "\x00custom"  # a source the function chose: any string not starting with "aws."
RESERVED = "aws."

# S3 event types (notification configuration) <-> EventBridge detail-types of the same S3 events.
S3_DETAIL_TYPES = {
    "Object Created": "s3:ObjectCreated:*",
    "Object Deleted": "s3:ObjectRemoved:*",
    "Object Restore Initiated": "s3:ObjectRestore:*",
    "Object Restore Completed": "s3:ObjectRestore:*",
    "Object Tags Added": "s3:ObjectTagging:*",
    "Object Tags Deleted": "s3:ObjectTagging:*",
    "Object ACL Updated": "s3:ObjectAcl:*",
}


def parse(pattern: Any) -> dict[str, Any] | None:
    """A pattern as a dict (rules hold it as JSON text); None when it is not one."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError:
            return None
    return pattern if isinstance(pattern, dict) else None


def may_match(pattern: Any, event: dict[str, Any]) -> bool:
    """False only when ``pattern`` certainly rejects every event consistent with ``event``.

    Example:
        >>> may_match({"$or": [{"source": ["a"]}, {"detail-type": [{"prefix": "Object"}]}]},
        ...           {"source": "b", "detail-type": "Object Created"})
        True
    """
    parsed = parse(pattern)
    if parsed is None:
        return True  # unreadable: assume it may match
    return _object(parsed, event)


def _object(pattern: dict[str, Any], event: Any) -> bool:
    for key, rule in pattern.items():
        if key == "$or" and isinstance(rule, list):
            if not any(_object(p, event) for p in rule if isinstance(p, dict)):
                return False
            continue
        known = isinstance(event, dict) and key in event
        value = event.get(key) if isinstance(event, dict) else None
        if isinstance(rule, dict):
            if known and not _object(rule, value):
                return False
        elif isinstance(rule, list):
            if not _field(rule, value, known):
                return False
    return True


def _field(rule: list[Any], value: Any, known: bool) -> bool:
    if not known:
        return True  # a field the caller does not know may hold anything, or be absent
    values = value if isinstance(value, list) else [value]
    return any(_element(r, v) for r in rule for v in values)


def _element(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _equals(rule, value)
    if "exists" in rule:
        return bool(rule["exists"])
    if value == CUSTOM_SOURCE:
        return _custom_source(rule)
    text = value if isinstance(value, str) else None
    if "prefix" in rule:
        return text is not None and _affix(rule["prefix"], text, str.startswith)
    if "suffix" in rule:
        return text is not None and _affix(rule["suffix"], text, str.endswith)
    if "equals-ignore-case" in rule:
        return text is not None and str(rule["equals-ignore-case"]).lower() == text.lower()
    if "wildcard" in rule:
        body = "".join(".*" if c == "*" else re.escape(c) for c in str(rule["wildcard"]))
        return text is not None and re.fullmatch(body, text, re.DOTALL) is not None
    if "anything-but" in rule:
        return not _anything_but_excludes(rule["anything-but"], value)
    return True  # numeric, cidr and anything newer: assume it may match


def _equals(rule: Any, value: Any) -> bool:
    if value == CUSTOM_SOURCE:
        return isinstance(rule, str) and not rule.startswith(RESERVED)
    return bool(rule == value)


def _affix(rule: Any, text: str, test: Any) -> bool:
    if isinstance(rule, dict) and "equals-ignore-case" in rule:
        return bool(test(text.lower(), str(rule["equals-ignore-case"]).lower()))
    return bool(test(text, str(rule)))


def _anything_but_excludes(excluded: Any, value: Any) -> bool:
    """Whether ``anything-but`` rules ``value`` out."""
    if isinstance(excluded, dict):
        return _element(excluded, value) if value != CUSTOM_SOURCE else False
    items = excluded if isinstance(excluded, list) else [excluded]
    return value != CUSTOM_SOURCE and value in items


def _custom_source(rule: dict[str, Any]) -> bool:
    """Whether some source a function may send (not starting with ``aws.``) satisfies ``rule``."""
    if "prefix" in rule:
        prefix = rule["prefix"]
        prefix = prefix.get("equals-ignore-case", "") if isinstance(prefix, dict) else prefix
        return not str(prefix).startswith(RESERVED)
    if "wildcard" in rule:
        return not str(rule["wildcard"]).startswith(RESERVED)
    if "numeric" in rule or "cidr" in rule:
        return False
    return True  # suffix, anything-but, equals-ignore-case: some custom source fits


def s3_event(bucket: str, detail_type: str = "", key: str = "") -> dict[str, Any]:
    """The partial EventBridge event S3 sends for an object change in ``bucket``.

    Example:
        >>> s3_event("uploads", "Object Created")["detail"]
        {'bucket': {'name': 'uploads'}}
    """
    event: dict[str, Any] = {"source": "aws.s3", "detail": {"bucket": {"name": bucket}}}
    if detail_type:
        event["detail-type"] = detail_type
    if key:
        event["detail"]["object"] = {"key": key}
    return event


def s3_via_eventbridge(bucket: str, bus_arn: str, pattern: Any) -> Trigger | None:
    """The S3 → EventBridge delivery of ``bucket`` as far as a rule with ``pattern`` takes it (its object-event
    types and key prefix), or None when the rule cannot match this bucket's S3 events.

    Example:
        >>> hop = s3_via_eventbridge("uploads", "arn:aws:events:us-east-1:123456789012:event-bus/default",
        ...     {"source": ["aws.s3"], "detail-type": ["Object Created"],
        ...      "detail": {"object": {"key": [{"prefix": "in/"}]}}})
        >>> hop.events, hop.prefix
        (('s3:ObjectCreated:*',), 'in/')
    """
    types = [t for t in S3_DETAIL_TYPES if may_match(pattern, s3_event(bucket, t))]
    if not types:
        return None
    events = tuple(dict.fromkeys(S3_DETAIL_TYPES[t] for t in types))
    return Trigger("s3", f"arn:aws:s3:::{bucket}", events, prefix=_key_prefix(parse(pattern) or {}),
                   id="EventBridge", target_arn=bus_arn)


def _key_prefix(pattern: dict[str, Any]) -> str:
    """A single literal ``detail.object.key`` prefix of the pattern, else '' (every key)."""
    rules = ((pattern.get("detail") or {}).get("object") or {}).get("key") if isinstance(
        pattern.get("detail"), dict) else None
    if isinstance(rules, list) and len(rules) == 1 and isinstance(rules[0], dict):
        prefix = rules[0].get("prefix")
        return prefix if isinstance(prefix, str) else ""
    return ""


def custom_events_may_match(pattern: Any) -> bool:
    """Whether events a function sends itself (PutEvents, any source but ``aws.*``) may match ``pattern``.

    Example:
        >>> custom_events_may_match({"source": ["orders.service"]}), custom_events_may_match({"source": ["aws.s3"]})
        (True, False)
    """
    return may_match(pattern, {"source": CUSTOM_SOURCE})
