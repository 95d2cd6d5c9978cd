"""IAM condition blocks, evaluated as the IAM policy evaluation logic documents them, for the tests that check a
policy's conditions (moto evaluates no IAM condition, no resource policy and no SCP).

What is covered (the IAM User Guide, "IAM JSON policy elements: Condition operators" and "Condition keys that
are not present"): String / Arn operators (``Equals``, ``NotEquals``, ``Like``, ``NotLike``; ``Arn`` and
``StringLike`` with ``*`` and ``?``), ``Null``, the ``IfExists`` suffix and the ``ForAnyValue:`` /
``ForAllValues:`` set prefixes. Several operators in a block, and several keys under one operator, must all
match; several values of one key match if any does (for a negated operator: if none does). A key the request
does not carry matches a negated operator and no other (``IfExists``: any), ``Null`` says whether it is absent.
Keys are case-insensitive, ``String*`` values case-sensitive.

Example:
    >>> matches({"ArnNotEquals": {"aws:SourceArn": ["arn:aws:events:us-east-1:1:rule/r"]}}, {})
    True
    >>> matches({"StringEquals": {"lambda:Layer": ["x"]}}, {})
    False
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.iam_eval import glob_match

_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "StringNotEqualsIgnoreCase"}


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _one(operator: str, wanted: str, actual: str) -> bool:
    base = operator.replace("Not", "")
    if base in ("StringEquals", "ArnEquals"):
        return actual == wanted
    if base == "StringEqualsIgnoreCase":
        return actual.lower() == wanted.lower()
    if base in ("StringLike", "ArnLike"):
        return glob_match(wanted, actual)
    if base == "Bool":
        return actual.lower() == wanted.lower()
    raise NotImplementedError(f"condition operator {operator} is not taught to tests/world/iam_conditions.py")


def _key_matches(operator: str, wanted: list[str], actual: list[str] | None) -> bool:
    prefix, _, bare = operator.rpartition(":")
    if_exists = bare.endswith("IfExists")
    bare = bare.removesuffix("IfExists")
    if bare == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    if actual is None:
        return if_exists or bare in _NEGATED
    negated = bare in _NEGATED
    positive = bare.replace("Not", "") if negated else bare

    def hit(value: str) -> bool:
        return any(_one(positive, w, value) for w in wanted)

    if prefix == "ForAllValues":
        found = all(hit(v) for v in actual)
    elif prefix == "ForAnyValue":
        found = any(hit(v) for v in actual)
    else:
        found = any(hit(v) for v in actual)
    return not found if negated else found


def matches(condition: dict[str, Any] | None, context: dict[str, Any]) -> bool:
    """Whether a statement's ``Condition`` block holds for a request with ``context`` (key -> value or list)."""
    lowered = {k.lower(): _values(v) for k, v in context.items()}
    for operator, keys in (condition or {}).items():
        for key, value in keys.items():
            if not _key_matches(operator, _values(value), lowered.get(key.lower())):
                return False
    return True


def decide(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, Any],
           principal: str = "") -> str:
    """``"deny"`` (an explicit Deny applies), ``"allow"`` (an Allow applies) or ``"implicit-deny"`` for one
    request, over the statements of one or several policies (``principal``: who asks, for a resource policy's
    ``Principal``; ``*`` matches anyone)."""
    allowed = False
    for statement in statements:
        if not _applies(statement, action, resource, principal) or not matches(statement.get("Condition"), context):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit-deny"


def _applies(statement: dict[str, Any], action: str, resource: str, principal: str) -> bool:
    actions = _values(statement.get("Action", []))
    resources = _values(statement.get("Resource", "*"))
    if not any(glob_match(a, action, ignore_case=True) for a in actions):
        return False
    if not any(glob_match(r, resource) for r in resources):
        return False
    who = statement.get("Principal")
    if who is None or who == "*":
        return True
    named = [v for values in (who.values() if isinstance(who, dict) else [who]) for v in _values(values)]
    return principal in named or "*" in named


# The condition keys a request carries, from its parameters (IAM service authorization reference): the keys the
# bot's policy conditions on. A key the request does not set is absent.
REQUEST_KEYS = {
    "ServiceNamespace": "application-autoscaling:service-namespace",
    "ScalableDimension": "application-autoscaling:scalable-dimension",
    "Layers": "lambda:Layer",
    "AlarmActions": "cloudwatch:AlarmActions",
}


def request_context(params: dict[str, Any]) -> dict[str, Any]:
    """The condition keys of one request (``REQUEST_KEYS``), from its parameters.

    Example:
        >>> request_context({"FunctionName": "f", "Layers": ["arn:aws:lambda:us-east-1:1:layer:x:1"]})
        {'lambda:Layer': ['arn:aws:lambda:us-east-1:1:layer:x:1']}
    """
    return {key: params[name] for name, key in REQUEST_KEYS.items() if params.get(name)}
