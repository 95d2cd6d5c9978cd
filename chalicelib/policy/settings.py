"""Policies: validate the documents in ``policies/`` and load the compiled set the Lambda runs with.

``policies/<id>.yaml`` says how to enforce one check (``mode``, ``severity``, ``params``, ``exempt``);
``policies/settings.yaml`` holds the bot-wide settings. Only policies that have a file are enforced.
The CLI parses YAML and calls :func:`validate`; ``make package`` writes the validated set as JSON into
``chalicelib/compiled_policies.json`` so the deployed Lambda needs no YAML parser.

Example:
    >>> policy_set = validate({"apigw-timeout.yaml": {"mode": "auto"}, "settings.yaml": {}})
    >>> policy_set.policies["apigw-timeout"].params["buffer_seconds"]
    4
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.checks import REGISTRY, Check
from chalicelib.core.model import MODES, SEVERITIES
from chalicelib.policy.mutelist import MUTELIST_FILE, Mutelist, parse_mutelist

COMPILED_PATH = Path(__file__).resolve().parent.parent / "compiled_policies.json"  # chalicelib/, in the Lambda zip
SETTINGS_FILE = "settings.yaml"
MAX_FILE_BYTES = 64 * 1024

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,20}$")
_SLACK_TEAM = re.compile(r"^[TE][A-Z0-9]{2,20}$")
_SLACK_APP = re.compile(r"^A[A-Z0-9]{2,20}$")
_FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]{1,64}$")
_POLICY_KEYS = {"mode", "severity", "params", "exempt", "description"}


class PolicyError(ValueError):
    """A policy document is invalid. ``str()`` is one line: ``file: key: what is wrong``."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = _printable(file), _printable(key, 60), _printable(problem, 300)
        super().__init__(f"{self.file}: {self.key}: {self.problem}" if key else f"{self.file}: {self.problem}")


def _printable(text: str, limit: int = 200) -> str:
    """Hostile keys and values are echoed escaped and short: the error stays one readable line."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Settings:
    """Bot-wide settings from ``settings.yaml`` (keys are a contract)."""

    self_role_patterns: tuple[str, ...] = ("arn:aws:iam::*:role/safetycatch-*",)
    approvers: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    exempt_tag: str = "safetycatch:exempt"
    never_kill: tuple[str, ...] = ()
    approval_ttl_hours: float = 24
    heartbeat_silence_hours: float = 6  # no CloudTrail event for this long while functions change: the pipe is silent
    max_changes_per_hour: int = 20
    max_changes_per_function_per_hour: int = 5
    max_changes_per_policy_per_hour: int = 10
    max_auto_reservation_share: float = 0.1
    max_quota_share: float = 0.5  # of any account-wide API quota shared with the customer (chalicelib/core/quotas.py)
    max_auto_reservation_total_share: float = 0.3
    max_reapply: int = 2
    fight_window_hours: float = 24
    slack_team_ids: tuple[str, ...] = ()
    slack_app_id: str = ""
    own_functions: tuple[str, ...] = ()  # the bot's own function ARNs, exact (written by `make package`)

    def is_own_role(self, role_arn: str) -> bool:
        """True when ``role_arn`` is one of the bot's roles (its own change). A pattern for any account
        (``arn:aws:iam::*:role/...``: the member role, by name) is the bot only in member accounts: a role of that
        name in the bot's own account (the account of ``own_functions``, once packaged) is somebody else's.

        Example:
            >>> Settings().is_own_role("arn:aws:iam::123456789012:role/safetycatch-dev-role")
            True
            >>> Settings(self_role_patterns=("arn:aws:iam::*:role/safetycatch-remediation",),
            ...          own_functions=("arn:aws:lambda:us-east-1:123456789012:function:safetycatch-prod",)
            ...          ).is_own_role("arn:aws:iam::123456789012:role/safetycatch-remediation")
            False
        """
        parts = role_arn.split(":")
        home = len(parts) > 4 and parts[4] in {arn.split(":")[4] for arn in self.own_functions if arn.count(":") > 4}
        return any(fnmatch.fnmatchcase(role_arn, pattern) for pattern in self.self_role_patterns
                   if not (home and _any_account(pattern)))

    def is_own_function(self, function_arn: str) -> bool:
        """True when ``function_arn`` is exactly one of the bot's own functions (``own_functions``).

        Example:
            >>> Settings(own_functions=("arn:aws:lambda:us-east-1:123456789012:function:safetycatch-prod",)
            ...          ).is_own_function("arn:aws:lambda:us-east-1:999999999999:function:safetycatch-prod")
            False
        """
        return function_arn in self.own_functions


def _any_account(pattern: str) -> bool:
    """A role pattern matching every account's role of a name (its account field is a wildcard)."""
    parts = pattern.split(":")
    return len(parts) > 4 and any(c in parts[4] for c in "*?[")


@dataclass(frozen=True)
class PolicyConfig:
    """How one check is enforced: defaults from the check, overridden by its policy file."""

    id: str
    mode: str
    severity: str
    params: dict[str, Any]
    exempt: tuple[str, ...] = ()

    def exempts(self, function_name: str) -> bool:
        return any(fnmatch.fnmatchcase(function_name, glob) for glob in self.exempt)


@dataclass(frozen=True)
class PolicySet:
    settings: Settings
    policies: dict[str, PolicyConfig] = field(default_factory=dict)
    mutes: Mutelist = field(default_factory=Mutelist)

    def enabled(self) -> list[tuple[Check, PolicyConfig]]:
        """Checks to run, in id order, with their configuration (mode ``off`` left out)."""
        return [(REGISTRY[pid], cfg) for pid, cfg in sorted(self.policies.items()) if cfg.mode != "off"]

    def only(self, *policy_ids: str) -> PolicySet:
        """The same settings with just these policies (those that are configured).

        Example:
            >>> sorted(load().only("apigw-timeout", "memory-cpu").policies)
            ['apigw-timeout', 'memory-cpu']
        """
        return PolicySet(self.settings, {pid: cfg for pid, cfg in self.policies.items() if pid in policy_ids},
                         self.mutes)

    def to_json(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings),
                "policies": {pid: asdict(cfg) for pid, cfg in sorted(self.policies.items())},
                "mutes": self.mutes.to_json()}


def _strings(file: str, key: str, value: Any, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(file, key, "expected a list of non-empty strings")
    for v in value:
        if pattern and not pattern.match(v):
            raise PolicyError(file, key, f"{v!r} is not a valid id")
    return tuple(value)


class Problems:
    """Collects every :class:`PolicyError` of a validation, so ``lint`` can report them all at once."""

    def __init__(self) -> None:
        self.errors: list[PolicyError] = []

    def attempt(self, check: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``check(*args)``; on a PolicyError, record it and return ``default``."""
        try:
            return check(*args)
        except PolicyError as exc:
            self.errors.append(exc)
            return default


def _exempt_tag(file: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise PolicyError(file, key, "expected a tag key (1-128 characters)")
    return value


def _number(low: float, high: float, what: str, whole: bool = False,
            above_low: bool = False) -> Callable[[str, str, Any], Any]:
    """A setting's check: a number in [low, high] (``above_low``: low itself excluded)."""
    def check(file: str, key: str, value: Any) -> Any:
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high or \
                (above_low and value == low):
            raise PolicyError(file, key, f"expected {what}")
        return value
    return check


# List settings: key -> the pattern every item must match (None: any non-empty string).
_LISTS: dict[str, re.Pattern[str] | None] = {
    "self_role_patterns": None, "never_kill": None, "own_functions": _FUNCTION_ARN, "approvers": _SLACK_USER,
    "approver_groups": _SLACK_GROUP, "slack_team_ids": _SLACK_TEAM,
}

# Numeric settings: key -> (type, lowest, highest, what the number counts), bounds inclusive except a lowest of 0
# for a float (which must be above it).
_NUMBERS: dict[str, tuple[type, float, float, str]] = {
    "approval_ttl_hours": (float, 0, 24 * 30, "hours"),
    "heartbeat_silence_hours": (float, 0, 24 * 30, "hours"),
    "max_changes_per_hour": (int, 0, 10000, "changes"),
    "max_changes_per_function_per_hour": (int, 0, 10000, "changes"),
    "max_changes_per_policy_per_hour": (int, 0, 10000, "changes"),
    "max_auto_reservation_share": (float, 0, 1, "share of the account concurrency limit"),
    "max_quota_share": (float, 0, 1, "share of each AWS API quota"),
    "max_auto_reservation_total_share": (float, 0, 1, "share of the account concurrency limit"),
    "max_reapply": (int, 0, 100, "re-applications"),
    "fight_window_hours": (float, 0, 24 * 30, "hours"),
}


def _slack_app_id(file: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or value and not _SLACK_APP.match(value):
        raise PolicyError(file, key, "expected a Slack app id (A...)")
    return value


def _list_check(pattern: re.Pattern[str] | None) -> Callable[[str, str, Any], Any]:
    return lambda file, key, value: _strings(file, key, value, pattern)


def _number_check(kind: type, low: float, high: float, unit: str) -> Callable[[str, str, Any], Any]:
    what = f"{'a whole number' if kind is int else 'a number'} of {unit} between {low:g} and {high:g}"
    return _number(low, high, what, whole=kind is int, above_low=kind is float)


_SETTING_CHECKS: dict[str, Callable[[str, str, Any], Any]] = {
    **{key: _list_check(pattern) for key, pattern in _LISTS.items()},
    **{key: _number_check(*spec) for key, spec in _NUMBERS.items()},
    "exempt_tag": _exempt_tag,
    "slack_app_id": _slack_app_id,
}


def _settings(doc: Any, problems: Problems | None = None) -> Settings:
    file, problems = SETTINGS_FILE, problems or Problems()
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        problems.errors.append(PolicyError(file, "", "expected a mapping of settings"))
        return Settings()
    known = set(Settings.__dataclass_fields__)
    out: dict[str, Any] = {}
    for key, value in doc.items():
        check = _SETTING_CHECKS.get(str(key))
        if key not in known or check is None:
            problems.errors.append(PolicyError(file, str(key), f"unknown setting (known: {', '.join(sorted(known))})"))
            continue
        checked = problems.attempt(check, file, key, value)
        if checked is not None:
            out[key] = checked
    settings = Settings(**out)
    if settings.max_auto_reservation_total_share < settings.max_auto_reservation_share:
        problems.errors.append(PolicyError(file, "max_auto_reservation_total_share", (
            f"the bound on the sum ({settings.max_auto_reservation_total_share:g}) must be at least "
            f"max_auto_reservation_share ({settings.max_auto_reservation_share:g})")))
    return settings


def _param(file: str, check: Check, name: str, value: Any) -> Any:
    spec = next((p for p in check.params if p.name == name), None)
    key = f"params.{name}"
    if spec is None:
        known = ", ".join(p.name for p in check.params) or "none"
        raise PolicyError(file, key, f"unknown param (known: {known})")
    ok = (isinstance(value, spec.kind) and not isinstance(value, bool)) if spec.kind in (int, float) \
        else isinstance(value, spec.kind)
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if spec.kind is list and ok and not all(isinstance(v, str) for v in value):
        ok = False
    if not ok:
        raise PolicyError(file, key, f"expected {spec.kind.__name__}, got {value!r:.40}")
    problem = spec.out_of_bounds(value)
    if problem:
        raise PolicyError(file, key, problem)
    return value


def _mode(file: str, check: Check, doc: dict[str, Any]) -> str:
    mode = doc.get("mode", check.default_mode)
    if mode is False:  # YAML 1.1 reads a bare `off` as false; that is what the author meant
        mode = "off"
    if mode not in MODES:
        raise PolicyError(file, "mode", f"expected one of {', '.join(MODES)}, got {mode!r:.40}")
    if mode == "auto" and not check.fix_actions:
        raise PolicyError(file, "mode", f"{check.id} has no automatic fix; use notify or approve")
    return str(mode)


def _severity(file: str, check: Check, doc: dict[str, Any]) -> str:
    severity = doc.get("severity", check.default_severity)
    if severity not in SEVERITIES:
        raise PolicyError(file, "severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r:.40}")
    return str(severity)


def _params(file: str, check: Check, raw: Any, problems: Problems) -> dict[str, Any]:
    """Each param on its own, then the rules that tie params together (only when every param is valid)."""
    if not isinstance(raw, dict):
        problems.errors.append(PolicyError(file, "params", "expected a mapping"))
        return check.defaults()
    params, before = check.defaults(), len(problems.errors)
    for name, value in raw.items():
        params[str(name)] = problems.attempt(_param, file, check, str(name), value, default=params.get(str(name)))
    if len(problems.errors) == before:
        for rule in check.rules:
            if not rule.holds(params):
                got = ", ".join(f"{n}={params[n]}" for n in rule.params)
                problems.errors.append(PolicyError(file, "params", f"{rule.text} (got {got})"))
    return params


def _policy(file: str, policy_id: str, doc: Any, problems: Problems | None = None) -> PolicyConfig | None:
    """One policy file, every problem recorded in ``problems``; None when it is not valid."""
    problems = problems or Problems()
    before = len(problems.errors)
    check = REGISTRY.get(policy_id)
    doc = {} if doc is None else doc
    if check is None:
        problems.errors.append(PolicyError(file, "", f"no check named {policy_id!r} (known: {', '.join(REGISTRY)})"))
        return None
    if not isinstance(doc, dict):
        problems.errors.append(PolicyError(file, "", "expected a mapping with mode / severity / params / exempt"))
        return None
    known = ", ".join(sorted(_POLICY_KEYS))
    for key in doc:
        if key == "id":
            problems.errors.append(PolicyError(file, "id", "the policy id is the file name; remove the key"))
        elif key not in _POLICY_KEYS:
            problems.errors.append(PolicyError(file, str(key), f"unknown key (known: {known})"))
    mode = problems.attempt(_mode, file, check, doc)
    severity = problems.attempt(_severity, file, check, doc)
    params = _params(file, check, doc.get("params") or {}, problems)
    exempt = problems.attempt(_strings, file, "exempt", doc["exempt"], default=()) \
        if doc.get("exempt") is not None else ()
    if len(problems.errors) > before:
        return None
    return PolicyConfig(policy_id, mode, severity, params, exempt)


def _mutes(doc: Any, problems: Problems) -> Mutelist:
    mutes, found = parse_mutelist(doc)
    problems.errors.extend(PolicyError(MUTELIST_FILE, key, problem) for key, problem in found)
    return mutes


def validate_all(documents: dict[str, Any], problems: Problems | None = None) -> tuple[PolicySet, list[PolicyError]]:
    """Validate parsed policy documents keyed by file name; every problem in every file (none: the set is valid).

    Example:
        >>> _, problems = validate_all({"apigw-timeout.yaml": {"mode": "sometimes", "params": {"buffer_seconds": 40}},
        ...                             "memory-cpu.yaml": {"severity": "urgent"}})
        >>> [f"{p.file}: {p.key}" for p in problems]
        ['apigw-timeout.yaml: mode', 'apigw-timeout.yaml: params.buffer_seconds', 'memory-cpu.yaml: severity']
    """
    problems = problems or Problems()
    settings = _settings(documents.get(SETTINGS_FILE), problems)
    mutes = _mutes(documents.get(MUTELIST_FILE), problems)
    policies = {}
    for file, doc in sorted(documents.items()):
        if file in (SETTINGS_FILE, MUTELIST_FILE):
            continue
        policy = _policy(file, file.rsplit(".", 1)[0], doc, problems)
        if policy is not None:
            policies[policy.id] = policy
    return PolicySet(settings, policies, mutes), problems.errors


def validate(documents: dict[str, Any]) -> PolicySet:
    """Validate parsed policy documents keyed by file name; raise the first :class:`PolicyError`.

    Example:
        >>> validate({"apigw-timeout.yaml": {"mode": "sometimes"}})
        Traceback (most recent call last):
        chalicelib.policy.settings.PolicyError: apigw-timeout.yaml: mode: expected one of auto, ... got 'sometimes'
    """
    policy_set, problems = validate_all(documents)
    if problems:
        raise problems[0]
    return policy_set


def from_json(data: dict[str, Any]) -> PolicySet:
    """Rebuild (and re-validate) a compiled policy set."""
    documents: dict[str, Any] = {SETTINGS_FILE: {k: list(v) if isinstance(v, tuple) else v
                                                 for k, v in data["settings"].items()}}
    for pid, cfg in data["policies"].items():
        documents[f"{pid}.yaml"] = {"mode": cfg["mode"], "severity": cfg["severity"],
                                    "params": cfg["params"], "exempt": list(cfg["exempt"])}
    if data.get("mutes"):
        documents[MUTELIST_FILE] = {"mutes": data["mutes"]}
    return validate(documents)


def shipped_policies() -> Path:
    """The default policies: the repository's ``policies/`` in a checkout, else the copy the wheel installs as
    ``safetycatch/policies`` beside chalicelib (pyproject.toml maps the folder there as package data).

    Example:
        >>> shipped_policies().name
        'policies'
    """
    home = Path(__file__).resolve().parents[2]
    checkout = home / "policies"
    return checkout if checkout.is_dir() else home / "safetycatch" / "policies"


def load(policies_dir: str | None = None) -> PolicySet:
    """The policy set to run with: ``policies_dir`` (or ``SAFETYCATCH_POLICIES``) if given; else the repo's
    ``policies/`` when it is there (a checkout); else the compiled JSON shipped in the Lambda package.

    Example:
        >>> load("policies").settings.exempt_tag
        'safetycatch:exempt'
    """
    policies_dir = policies_dir or os.environ.get("SAFETYCATCH_POLICIES")
    directory = Path(policies_dir) if policies_dir else shipped_policies()
    if not policies_dir and not directory.is_dir() and COMPILED_PATH.exists():
        return from_json(json.loads(COMPILED_PATH.read_text()))
    return validate(read_dir(directory))


def lint_dir(directory: Path) -> tuple[PolicySet, list[PolicyError]]:
    """Every problem of every file in ``directory`` (YAML and validation); the set is valid when none.

    Example:
        >>> policy_set, problems = lint_dir(Path("policies"))
        >>> problems, "apigw-timeout" in policy_set.policies
        ([], True)
    """
    problems = Problems()
    documents = read_dir(directory, problems)
    return validate_all(documents, problems)


def _yaml_loader() -> Any:
    """PyYAML's safe loader, refusing duplicate keys."""
    try:
        import yaml
    except ImportError as exc:  # the Lambda package ships compiled JSON instead
        raise PolicyError("policies", "", "PyYAML is not installed; use the compiled policies") from exc

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                        key_node.start_mark)
            seen[key] = loader.construct_object(value_node, deep=True)
        return seen

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def _read_yaml(path: Path, loader: Any) -> Any:
    import yaml

    if path.stat().st_size > MAX_FILE_BYTES:
        raise PolicyError(path.name, "", f"file larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(path.name, where, f"invalid YAML: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(path.name, "", "not UTF-8 text") from exc


def read_dir(directory: Path, problems: Problems | None = None) -> dict[str, Any]:
    """Parse every ``*.yaml`` / ``*.yml`` in ``directory`` (PyYAML safe loader, duplicate keys refused).

    Raises the first :class:`PolicyError`; with ``problems``, records each one and goes on with the other files.
    """
    collect = problems or Problems()
    loader = _yaml_loader()
    if not directory.is_dir():
        raise PolicyError(str(directory), "", "not a directory")
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not paths:
        raise PolicyError(str(directory), "", "no policy files (*.yaml)")
    documents: dict[str, Any] = {}
    for path in paths:
        before = len(collect.errors)
        document = collect.attempt(_read_yaml, path, loader)
        if len(collect.errors) == before:
            documents[path.name.replace(".yml", ".yaml")] = document
        elif problems is None:
            raise collect.errors[0]
    return documents
