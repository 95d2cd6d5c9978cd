"""A small, pure IAM identity-policy evaluator: can these policies perform one of these actions on a target?

Enough of IAM for "can the function write to what triggers it": Allow / Deny statements, ``Action`` /
``NotAction`` and ``Resource`` / ``NotResource`` with ``*`` and ``?`` wildcards (actions case-insensitive,
resources case-sensitive), policy variables (``${aws:username}``) read as ``*``, and explicit Deny wins.
The target may itself be a pattern (``arn:aws:s3:::uploads/incoming/*`` - every key a notification
fires on): an Allow counts when its resource can match some of the target, a Deny only when it covers
all of it. Conditions are not evaluated: a conditional Allow still counts (the write may happen), a
conditional Deny does not (it may not apply). Permission boundaries, SCPs and resource policies are out
of scope. No AWS calls.

Example:
    >>> doc = {"Statement": [{"Effect": "Allow", "Action": "s3:Put*", "Resource": "arn:aws:s3:::uploads/*"}]}
    >>> can_perform([("inline", doc)], ("s3:PutObject",), "arn:aws:s3:::uploads/incoming/*").allowed
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

_VARIABLE = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True)
class Verdict:
    """The answer: ``allowed``, and which policy and action allow it (or which Deny stops it)."""

    allowed: bool
    action: str = ""
    policy: str = ""
    denied_by: str = ""
    conditional: bool = False
    resource: str = ""  # a concrete resource the allowing statement reaches (for IAM's policy simulator)


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy document (a dict or its JSON text); malformed parts are dropped.

    Example:
        >>> statements('{"Statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}}')[0]["Effect"]
        'Allow'
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    found = document.get("Statement")
    found = [found] if isinstance(found, dict) else found
    return [s for s in found or [] if isinstance(s, dict) and s.get("Effect") in ("Allow", "Deny")]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@lru_cache(maxsize=4096)
def _regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match (``*`` any run, ``?`` one character; nothing else is special).

    Example:
        >>> glob_match("s3:Put*", "S3:PUTOBJECT", ignore_case=True)
        True
    """
    return _regex(_VARIABLE.sub("*", pattern), ignore_case).fullmatch(text) is not None


def glob_intersects(a: str, b: str) -> bool:
    """True when some string matches both wildcard patterns.

    Example:
        >>> glob_intersects("arn:aws:s3:::b/out/*", "arn:aws:s3:::b/in/*")
        False
    """
    a, b = _VARIABLE.sub("*", a), _VARIABLE.sub("*", b)

    @cache
    def walk(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return walk(i + 1, j) or (j < len(b) and walk(i, j + 1))
        if j < len(b) and b[j] == "*":
            return walk(i, j + 1) or (i < len(a) and walk(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == "?" or b[j] == "?" or a[i] == b[j]):
            return walk(i + 1, j + 1)
        return False

    return walk(0, 0)


def glob_witness(a: str, b: str, filler: str = "safetycatch-probe") -> str | None:
    """A concrete string matching both wildcard patterns (a ``*`` both leave open becomes ``filler``), or None.

    Example:
        >>> glob_witness("arn:aws:s3:::b/*", "arn:aws:s3:::b/in/*")
        'arn:aws:s3:::b/in/safetycatch-probe'
        >>> glob_witness("arn:aws:s3:::b/out/*", "arn:aws:s3:::b/in/*") is None
        True
    """
    a, b = _VARIABLE.sub("*", a), _VARIABLE.sub("*", b)

    @cache
    def walk(i: int, j: int) -> str | None:
        if i == len(a) and j == len(b):
            return ""
        if i < len(a) and j < len(b) and a[i] == "*" and b[j] == "*":
            rest = walk(i + 1, j + 1)
            if rest is not None:
                return filler + rest
            rest = walk(i + 1, j)
            return rest if rest is not None else walk(i, j + 1)
        for star_side in (0, 1):
            p, q, k, m = (a, b, i, j) if star_side == 0 else (b, a, j, i)
            if k < len(p) and p[k] == "*":
                skip = walk(i + 1, j) if star_side == 0 else walk(i, j + 1)
                if skip is not None:
                    return skip
                if m < len(q):
                    took = walk(i, j + 1) if star_side == 0 else walk(i + 1, j)
                    if took is not None:
                        return (q[m] if q[m] not in "*?" else "x") + took
                return None
        if i < len(a) and j < len(b) and (a[i] == "?" or b[j] == "?" or a[i] == b[j]):
            rest = walk(i + 1, j + 1)
            char = b[j] if a[i] == "?" else a[i]
            return None if rest is None else (char if char != "?" else "x") + rest
        return None

    return walk(0, 0)


def glob_covers(pattern: str, target: str) -> bool:
    """True when ``pattern`` matches every string of ``target`` (a wildcard pattern itself).

    Checked on instances of the target: each wildcard as the empty string and as a long run no ARN
    contains, so a ``?`` or a literal cannot pass for a ``*``.

    Example:
        >>> glob_covers("arn:aws:s3:::b/*", "arn:aws:s3:::b/in/*")
        True
        >>> glob_covers("arn:aws:s3:::b/in/x", "arn:aws:s3:::b/in/*")
        False
    """
    target = _VARIABLE.sub("*", target)
    if "*" not in target and "?" not in target:
        return glob_match(pattern, target)
    filler = "\x00\x01\x02\x03"
    return all(glob_match(pattern, target.replace("*", run).replace("?", "\x00")) for run in ("", filler))


def _applies_to_action(statement: dict[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(glob_match(p, action, ignore_case=True) for p in _strings(statement["NotAction"]))
    return any(glob_match(p, action, ignore_case=True) for p in _strings(statement.get("Action")))


def _reaches(statement: dict[str, Any], target: str) -> bool:
    """An Allow reaches some of the target."""
    if "NotResource" in statement:
        return not any(glob_covers(p, target) for p in _strings(statement["NotResource"]))
    return any(glob_intersects(p, target) for p in _strings(statement.get("Resource")))


def _covers(statement: dict[str, Any], target: str) -> bool:
    """A Deny covers all of the target."""
    if "NotResource" in statement:
        return not any(glob_intersects(p, target) for p in _strings(statement["NotResource"]))
    return any(glob_covers(p, target) for p in _strings(statement.get("Resource")))


def can_perform(policies: Iterable[tuple[str, Any]], actions: Sequence[str], target: str) -> Verdict:
    """Whether ``policies`` ((name, document) pairs) allow any of ``actions`` on ``target``.

    Example:
        >>> allow = {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
        >>> deny = {"Statement": [{"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"}]}
        >>> can_perform([("a", allow), ("d", deny)], ("sqs:SendMessage",), "arn:aws:sqs:us-east-1:1:q")
        Verdict(allowed=False, action='', policy='', denied_by='d', conditional=False, resource='')
    """
    parsed = [(name, s) for name, document in policies for s in statements(document)]
    denied_by = ""
    for action in actions:
        deny: str | None = next((name for name, s in parsed if s["Effect"] == "Deny" and "Condition" not in s
                                    and _applies_to_action(s, action) and _covers(s, target)), None)
        if deny is not None:
            denied_by = denied_by or deny
            continue
        allow = next(((name, s) for name, s in parsed if s["Effect"] == "Allow"
                      and _applies_to_action(s, action) and _reaches(s, target)), None)
        if allow is not None:
            return Verdict(True, action, allow[0], conditional="Condition" in allow[1],
                           resource=_witness(allow[1], target))
    return Verdict(False, denied_by=denied_by)


def _witness(statement: dict[str, Any], target: str) -> str:
    """A concrete resource of ``target`` the Allow ``statement`` reaches (the target itself when it has no
    wildcard)."""
    if "NotResource" in statement:
        return glob_witness(target, target) or target
    for pattern in _strings(statement.get("Resource")):
        found = glob_witness(pattern, target)
        if found is not None:
            return found
    return target
