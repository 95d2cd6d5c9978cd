"""The mutelist: findings an operator has accepted for a while, with a reason and an expiry date.

``policies/mutelist.yaml`` (optional) holds ``mutes:``, a list of entries ``{policy, account, region,
function, reason, expires}``. ``policy``, ``account``, ``region`` and ``function`` are globs (default ``*``;
``function`` matches the name or the ARN); ``reason`` and ``expires`` (a date, ``YYYY-MM-DD``) are required,
so that every mute says why and ends. A matching finding gets the outcome ``muted`` and nothing is changed or
sent; from the day after ``expires`` it comes back. ``safetycatch lint`` validates the file; it is compiled
into the Lambda package with the policies.

Example:
    >>> mutes, problems = parse_mutelist({"mutes": [{"policy": "memory-cpu", "function": "pdf-*",
    ...     "reason": "rewrite in Q3 (JIRA-42)", "expires": "2030-01-31"}]})
    >>> problems
    []
    >>> from chalicelib.core.model import FunctionRef
    >>> ref = FunctionRef("pdf-render", "123456789012", "us-east-1")
    >>> mutes.match("memory-cpu", ref, now=0).reason
    'rewrite in Q3 (JIRA-42)'
    >>> mutes.match("memory-cpu", ref, now=1_900_000_000) is None  # 2030-03-17: expired, it comes back
    True
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib.core.model import FunctionRef

MUTELIST_FILE = "mutelist.yaml"
MAX_MUTES = 1000
MAX_TEXT = 300
_FIELDS = ("policy", "account", "region", "function", "reason", "expires")
_GLOBS = ("policy", "account", "region", "function")

Problem = tuple[str, str]  # (key, what is wrong), e.g. ("mutes[2].expires", "expected a date ...")


@dataclass(frozen=True)
class Mute:
    """One mute entry (globs, a reason, and the last day it holds, inclusive, UTC)."""

    reason: str
    expires: str
    policy: str = "*"
    account: str = "*"
    region: str = "*"
    function: str = "*"

    def active(self, now: float) -> bool:
        """True until the end of the ``expires`` day (UTC)."""
        end = dt.datetime.combine(dt.date.fromisoformat(self.expires) + dt.timedelta(days=1), dt.time(),
                                  dt.timezone.utc)
        return now < end.timestamp()

    def matches(self, policy: str, ref: FunctionRef) -> bool:
        return (fnmatch.fnmatchcase(policy, self.policy) and fnmatch.fnmatchcase(ref.account, self.account)
                and fnmatch.fnmatchcase(ref.region, self.region)
                and (fnmatch.fnmatchcase(ref.name, self.function) or fnmatch.fnmatchcase(ref.arn, self.function)))

    def describe(self) -> str:
        return f"muted until {self.expires}: {self.reason}"


@dataclass(frozen=True)
class Mutelist:
    mutes: tuple[Mute, ...] = ()

    def match(self, policy: str, ref: FunctionRef, now: float) -> Mute | None:
        """The first active mute for this finding, or None."""
        return next((m for m in self.mutes if m.matches(policy, ref) and m.active(now)), None)

    def expired(self, now: float) -> list[Mute]:
        return [m for m in self.mutes if not m.active(now)]

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(m) for m in self.mutes]


def _date(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return None  # a timestamp is not what `expires` means; ask for a date
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    return None


def _entry(key: str, raw: Any, problems: list[Problem]) -> Mute | None:
    if not isinstance(raw, dict):
        problems.append((key, "expected a mapping with policy / account / region / function / reason / expires"))
        return None
    before = len(problems)
    for name in raw:
        if name not in _FIELDS:
            problems.append((f"{key}.{name}", f"unknown key (known: {', '.join(_FIELDS)})"))
    values: dict[str, str] = {}
    for name in _GLOBS:
        value = raw.get(name, "*")
        if isinstance(value, int) and not isinstance(value, bool) and name == "account":
            value = f"{value:012d}"  # YAML reads an unquoted account id as a number
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
            problems.append((f"{key}.{name}", f"expected a name or glob (1-{MAX_TEXT} characters)"))
        else:
            values[name] = value
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_TEXT:
        problems.append((f"{key}.reason", f"required: why this finding is accepted (1-{MAX_TEXT} characters)"))
    expires = _date(raw.get("expires"))
    if expires is None:
        problems.append((f"{key}.expires", "required: the last day the mute holds, a date (YYYY-MM-DD)"))
    if len(problems) == before and all(values.get(n, "*") == "*" for n in _GLOBS):
        problems.append((key, "mutes every finding; name a policy, account, region or function"))
    if len(problems) > before:
        return None
    return Mute(reason=str(reason).strip(), expires=str(expires), **values)


def parse_mutelist(doc: Any) -> tuple[Mutelist, list[Problem]]:
    """Validate a parsed ``mutelist.yaml``: the mutes that are valid, and every problem found."""
    if doc is None:
        return Mutelist(), []
    if not isinstance(doc, dict) or set(doc) - {"mutes"}:
        return Mutelist(), [("", "expected a mapping with one key, mutes: a list of entries")]
    raw = doc.get("mutes") or []
    if not isinstance(raw, list):
        return Mutelist(), [("mutes", "expected a list of entries")]
    if len(raw) > MAX_MUTES:
        return Mutelist(), [("mutes", f"more than {MAX_MUTES} entries")]
    problems: list[Problem] = []
    mutes = [_entry(f"mutes[{i}]", entry, problems) for i, entry in enumerate(raw)]
    return Mutelist(tuple(m for m in mutes if m is not None)), problems


def from_json(data: list[dict[str, Any]] | None) -> Mutelist:
    """Rebuild (and re-validate) a compiled mutelist; raises ValueError if it is not valid."""
    mutes, problems = parse_mutelist({"mutes": data or []})
    if problems:
        raise ValueError(f"compiled mutelist: {problems[0][0]}: {problems[0][1]}")
    return mutes
