"""``safetycatch explain [POLICY_ID] [--format table|json]``: what each check does, straight from the code.

One description per check (:func:`describe`) feeds both outputs: its doc, params with their defaults and
bounds, the rules across params, the fixes with the IAM permissions they need, the CloudTrail changes that
re-evaluate it and what it reads.

Example:
    >>> describe_policy("apigw-timeout")["params"][0]["name"], describe_policy("apigw-timeout")["params"][0]["maximum"]
    ('buffer_seconds', 10)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from chalicelib.act.fixes import ACTIONS
from chalicelib.checks import REGISTRY
from chalicelib.checks.base import Check, Param


class UnknownPolicy(ValueError):
    """Not a policy id (one line, exit 2)."""


def _param(p: Param) -> dict[str, Any]:
    return {"name": p.name, "type": p.kind.__name__, "default": p.default, "minimum": p.minimum,
            "maximum": p.maximum, "bounds": p.bounds(), "doc": p.doc}


def describe(check: Check) -> dict[str, Any]:
    """Everything ``explain`` says about one check, as data."""
    body = check.doc.strip().split("\n", 1)[-1].strip()
    return {
        "id": check.id, "footgun": check.footgun, "title": check.title, "default_mode": check.default_mode,
        "default_severity": check.default_severity,
        "doc": [" ".join(paragraph.split()) for paragraph in body.split("\n\n")],
        "params": [_param(p) for p in check.params],
        "rules": [rule.text for rule in check.rules],
        "fixes": [{"action": name, "doc": ACTIONS[name].doc, "permissions": list(ACTIONS[name].permissions)}
                  for name in check.fix_actions],
        "triggers": sorted(check.triggers),
        "reads": sorted({*check.read_permissions, "lambda:GetFunction"}),
    }


def describe_policy(policy_id: str) -> dict[str, Any]:
    if policy_id not in REGISTRY:
        raise UnknownPolicy(f"no policy {policy_id!r}; known: {', '.join(REGISTRY)}")
    return describe(REGISTRY[policy_id])


def cmd_explain(args: argparse.Namespace) -> int:
    from safetycatch import render

    policies = [describe_policy(args.policy)] if args.policy else [describe(c) for c in REGISTRY.values()]
    if args.format == "json":
        print(json.dumps({"policies": policies}, indent=2))
    elif args.policy:
        render.explain_policy(policies[0])
    else:
        render.explain_list(policies)
    return 0


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    explain = sub.add_parser("explain", parents=parents,
                             help="what a policy checks, its params and bounds, fixes and IAM permissions")
    explain.add_argument("policy", nargs="?", metavar="POLICY_ID")
    explain.add_argument("--format", choices=("table", "json"), default="table")
