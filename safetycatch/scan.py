"""``safetycatch scan``: evaluate every function of one or more scopes (account, region) with the bot's engine.

Without ``--fix`` nothing changes. With ``--fix`` it acts as the deployed bot would, and refuses without a state
table (the prior values that ``undo`` needs would die with the run) unless ``--no-state`` says so.

Example:
    $ safetycatch scan --checks apigw-timeout,memory-cpu --function 'orders-*' --format json
    $ safetycatch scan --accounts 111111111111 --regions eu-west-1,us-east-1 --format html > report.html
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from typing import Any

from chalicelib.core.model import SEVERITIES, FunctionSnapshot, severity_rank
from safetycatch import render
from safetycatch.common import UsageError, refuse_acting_without_state, runtime_for

NOT_COUNTED = ("exempt", "muted")  # outcomes --fail-on ignores


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser("scan", parents=parents,
                          help="evaluate every function in the region (changes nothing without --fix)")
    scan.add_argument("--region", help="the region to scan (default: the boto3 chain's)")
    scan.add_argument("--policies", metavar="DIR")
    scan.add_argument("--format", choices=("table", "json", "html", "ocsf"), default="table",
                      help="html: one self-contained page on stdout; ocsf: one OCSF Compliance Finding per line, "
                           "for SIEMs")
    scan.add_argument("--fix", action="store_true", help="act as the deployed bot would (fix / ask / notify)")
    scan.add_argument("--no-state", action="store_true",
                      help="allow --fix without SAFETYCATCH_TABLE (prior values are then lost: no undo)")
    scan.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                      help=f"exit 1 if a finding is at or above this severity ({', '.join(SEVERITIES)})")
    who = scan.add_mutually_exclusive_group()
    who.add_argument("--accounts", metavar="ID,...", help="sweep these accounts (through their remediation role)")
    who.add_argument("--all-accounts", action="store_true", help="sweep every active account of the organization")
    scan.add_argument("--regions", metavar="R,...", help="sweep these regions (default: the one region)")
    scan.add_argument("--checks", metavar="ID,...", help="run only these policies")
    scan.add_argument("--exclude-checks", metavar="ID,...", help="run every enabled policy but these")
    scan.add_argument("--function", metavar="NAME_OR_GLOB", help="only functions whose name or ARN matches")


def policy_ids(text: str, option: str, enabled: set[str]) -> set[str]:
    """``--checks a,b``: known policy ids that the policies directory enables; UsageError otherwise.

    Example:
        >>> sorted(policy_ids("memory-cpu, apigw-timeout", "--checks", {"apigw-timeout", "memory-cpu"}))
        ['apigw-timeout', 'memory-cpu']
    """
    from chalicelib.checks import REGISTRY

    ids = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(i for i in ids if i not in REGISTRY)
    if unknown or not ids:
        raise UsageError(f"{option}: {', '.join(unknown) or 'nothing given'} is not a policy id "
                         f"(known: {', '.join(REGISTRY)})")
    disabled = sorted(ids - enabled)
    if disabled and option == "--checks":
        raise UsageError(f"{option}: {', '.join(disabled)} not enabled in the policies (no file, or mode off)")
    return ids


def _narrow(runtime: Any, args: argparse.Namespace) -> None:
    """Apply --checks / --exclude-checks to the runtime's policy set."""
    enabled = {check.id for check, _ in runtime.policy_set.enabled()}
    keep = policy_ids(args.checks, "--checks", enabled) if args.checks else enabled
    if args.exclude_checks:
        keep = keep - policy_ids(args.exclude_checks, "--exclude-checks", enabled)
    if not keep:
        raise UsageError("scan: --checks / --exclude-checks leave no policy to run")
    runtime.policy_set = runtime.policy_set.only(*keep)


def function_filter(pattern: str | None) -> Any:
    """``--function``: a predicate on snapshots (name or ARN, shell-style globs), or None for every function."""
    if not pattern:
        return None

    def select(snapshot: FunctionSnapshot) -> bool:
        return fnmatch.fnmatchcase(snapshot.name, pattern) or fnmatch.fnmatchcase(snapshot.arn, pattern)

    return select


def _plan(runtime: Any, args: argparse.Namespace) -> list[Any]:
    from chalicelib.org.scopes import parse_accounts, parse_regions, plan_scopes

    if args.region and args.regions:
        raise UsageError("scan: --region and --regions contradict each other; list every region in --regions")
    try:
        accounts = parse_accounts(args.accounts) if args.accounts else None
        regions = parse_regions(args.regions) if args.regions else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    scopes = plan_scopes(runtime, accounts=accounts, all_accounts=args.all_accounts, regions=regions)
    if not scopes:
        raise UsageError("scan --all-accounts: the organization lists no active account; nothing to scan")
    return scopes


def _print(data: dict[str, Any], form: str, act: bool, runtime: Any) -> None:
    if form == "json":
        print(json.dumps(data, indent=2))
    elif form == "ocsf":
        from chalicelib.exports.export import ocsf

        stamp = int(runtime.store.clock() * 1000)
        for finding in data["findings"]:
            print(json.dumps(ocsf(finding, stamp), separators=(",", ":")))
    elif form == "html":
        from safetycatch.html_report import html_page

        print(html_page(data, act=act, mode=runtime.mode))
    else:
        render.scan_table(data, act=act, mode=runtime.mode)


def cmd_scan(args: argparse.Namespace) -> int:
    from chalicelib.bot.handlers import reset_runtime
    from chalicelib.org.scopes import sweep_scopes

    runtime = runtime_for(args)
    _narrow(runtime, args)
    act = bool(args.fix)
    if act and runtime.mode == "off":
        render.errors.print("safetycatch: SAFETYCATCH_MODE=off - reporting only, nothing is changed")
        act = False
    if act:
        refuse_acting_without_state(runtime, "scan --fix", args.no_state)
    reset_runtime(runtime)
    scopes = _plan(runtime, args)
    with render.scan_progress(enabled=args.format == "table") as progress:  # json / ocsf / html: stdout is data
        data = sweep_scopes(runtime, scopes, act=act, progress=progress, select=function_filter(args.function))
    _print(data, args.format, act, runtime)
    if not data.get("complete", True):  # an incomplete scan never passes a gate, whatever --fail-on says
        for scope in data["scopes"]:
            if "refused" in scope:
                print(f"safetycatch: {scope['refused']} (scan incomplete)", file=sys.stderr)
        return 2
    if args.fail_on and any(severity_rank(f["severity"]) >= severity_rank(args.fail_on)
                            for f in data["findings"] if f["outcome"] not in NOT_COUNTED):
        return 1
    return 0
