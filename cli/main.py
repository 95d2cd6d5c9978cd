"""``safetycatch``: the operator CLI. Runs the same engine and handlers as the deployed bot.

Exit codes: 0 ok; 1 a finding at or above ``--fail-on``; 2 bad input, usage or configuration (one line on
stderr, no traceback).

Example:
    $ safetycatch scan --format json --fail-on high
    $ safetycatch replay tests/events/lambda-UpdateFunctionConfiguration20150331v2.json --dry-run
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from chalicelib.model import SEVERITIES, severity_rank
from chalicelib.runtime import ConfigError
from chalicelib.settings import PolicyError
from cli import check, redrive, render
from cli.events import EventFileError, load_events
from cli.templates import TemplateError


class UsageError(Exception):
    """Bad input from the operator: printed as one line, exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safetycatch", description="Keep AWS Lambda functions out of the "
                                     "classic footguns: scan, replay events, approve fixes, kill runaway loops.")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the bot's structured log on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    scan = sub.add_parser("scan", help="evaluate every function in the region (changes nothing without --fix)")
    scan.add_argument("--region")
    scan.add_argument("--policies", metavar="DIR")
    scan.add_argument("--format", choices=("table", "json", "ocsf"), default="table",
                      help="ocsf: one OCSF Compliance Finding per line, for SIEMs")
    scan.add_argument("--fix", action="store_true", help="act as the deployed bot would (fix / ask / notify)")
    scan.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                      help=f"exit 1 if a finding is at or above this severity ({', '.join(SEVERITIES)})")
    who = scan.add_mutually_exclusive_group()
    who.add_argument("--accounts", metavar="ID,...", help="sweep these accounts (through their remediation role)")
    who.add_argument("--all-accounts", action="store_true", help="sweep every active account of the organization")
    scan.add_argument("--regions", metavar="R,...", help="sweep these regions (default: the one region)")

    replay = sub.add_parser("replay", help="run saved EventBridge / CloudTrail events through the real handler")
    replay.add_argument("file", metavar="FILE")
    replay.add_argument("--policies", metavar="DIR")
    replay.add_argument("--format", choices=("table", "json"), default="table")
    replay.add_argument("--dry-run", action="store_true", help="decide but make zero AWS writes")

    sub.add_parser("demo", help="a self-contained tour on an embedded AWS (moto) - no account needed")

    lint = sub.add_parser("lint", help="validate policy files")
    lint.add_argument("dir", nargs="?", default="policies", metavar="DIR")

    explain = sub.add_parser("explain", help="what a policy checks, its params, fixes and IAM permissions")
    explain.add_argument("policy", nargs="?", metavar="POLICY_ID")

    pending = sub.add_parser("pending", help="approvals waiting for a decision (needs SAFETYCATCH_TABLE)")
    pending.add_argument("--format", choices=("table", "json"), default="table")

    sub.add_parser("init", help="create what local runs need (the SAFETYCATCH_TABLE state table), idempotently")

    kill = sub.add_parser("kill", help="throttle a runaway function to 0 now (its prior state is stored for restore)")
    kill.add_argument("function", metavar="FUNCTION", help="function name or ARN")
    kill.add_argument("--reason", default="manual kill from the CLI", help="why (audited and notified)")
    kill.add_argument("--policies", metavar="DIR")
    kill.add_argument("--format", choices=("table", "json"), default="table")

    restore = sub.add_parser("restore", help="put a killed function back exactly as it was before the kill")
    restore.add_argument("function", metavar="FUNCTION", help="function name or ARN")
    restore.add_argument("--policies", metavar="DIR")
    restore.add_argument("--format", choices=("table", "json"), default="table")
    for verb, what in (("approve", "approve a pending fix and apply it"), ("deny", "deny a pending fix")):
        decide = sub.add_parser(verb, help=f"{what} (the fallback when Slack is unreachable)")
        decide.add_argument("id", metavar="ID", help="approval id (safetycatch pending)")

    check.add_parser(sub)

    serve = sub.add_parser("serve", help="serve the bot's Slack routes locally (worker inline)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--policies", metavar="DIR")
    redrive.add_parser(sub)  # cli/redrive.py
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (``safetycatch`` calls ``sys.exit(main())``)."""
    args = _parser().parse_args(argv)
    if not args.verbose:
        from chalicelib.log import logger
        logger.setLevel("WARNING")
    try:
        return int(COMMANDS[args.command](args) or 0)
    except (UsageError, PolicyError, ConfigError, EventFileError, TemplateError) as exc:
        return _fail(str(exc))
    except NoCredentialsError:
        return _fail("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    except NoRegionError:
        return _fail("no AWS region set (use --region or AWS_DEFAULT_REGION)")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return _fail(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message', '')}")
    except BotoCoreError as exc:
        return _fail(f"AWS: {exc}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"safetycatch: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _runtime(args: argparse.Namespace, mode: str | None = None) -> Any:
    from chalicelib.runtime import Runtime

    return Runtime.from_env(getattr(args, "policies", None), mode=mode, region=getattr(args, "region", None))


def cmd_scan(args: argparse.Namespace) -> int:
    from chalicelib.handlers import reset_runtime

    runtime = _runtime(args)
    reset_runtime(runtime)
    act = bool(args.fix)
    if act and runtime.mode == "off":
        print("safetycatch: SAFETYCATCH_MODE=off - reporting only, nothing is changed", file=sys.stderr)
        act = False
    with render.scan_progress(enabled=args.format == "table") as progress:  # json / ocsf: stdout stays data
        if args.accounts or args.all_accounts or args.regions:
            data = _scan_scopes(runtime, args, act, progress)
        else:
            engine = runtime.engine(runtime.bot_account(), runtime.home_region)
            data = engine.sweep(act=act, progress=progress).to_json()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    elif args.format == "ocsf":
        from chalicelib.export import ocsf

        stamp = int(runtime.store.clock() * 1000)
        for finding in data["findings"]:
            print(json.dumps(ocsf(finding, stamp), separators=(",", ":")))
    else:
        render.scan_table(data, act=act, mode=runtime.mode)
    if args.fail_on and any(severity_rank(f["severity"]) >= severity_rank(args.fail_on)
                            for f in data["findings"] if f["outcome"] != "exempt"):
        return 1
    return 0


def _scan_scopes(runtime: Any, args: argparse.Namespace, act: bool, progress: Any) -> dict[str, Any]:
    """``scan --accounts/--all-accounts/--regions``: every scope in parallel, one report."""
    from chalicelib.scopes import parse_accounts, parse_regions, plan_scopes, sweep_scopes

    try:
        accounts = parse_accounts(args.accounts) if args.accounts else None
        regions = parse_regions(args.regions) if args.regions else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    scopes = plan_scopes(runtime, accounts=accounts, all_accounts=args.all_accounts, regions=regions)
    return sweep_scopes(runtime, scopes, act=act, progress=progress)


def cmd_replay(args: argparse.Namespace) -> int:
    from chalicelib.handlers import handle_event, reset_runtime

    events = load_events(args.file)
    runtime = _runtime(args, mode="dry-run" if args.dry_run else None)
    reset_runtime(runtime)
    reports = [handle_event(event, runtime=runtime) for event in events]
    if args.format == "json":
        print(json.dumps({"events": reports}, indent=2))
    else:
        render.replay_table(reports, mode=runtime.mode)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo()


def cmd_lint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chalicelib.settings import read_dir, validate

    policy_set = validate(read_dir(Path(args.dir)))
    ids = ", ".join(sorted(policy_set.policies)) or "none"
    print(f"{args.dir}: OK - {len(policy_set.policies)} policies ({ids}) and settings")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from chalicelib.checks import REGISTRY

    if args.policy and args.policy not in REGISTRY:
        raise UsageError(f"no policy {args.policy!r}; known: {', '.join(REGISTRY)}")
    render.explain(args.policy)
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    runtime.store.expire_due() if runtime.writes_state else None
    approvals = [{"id": a["id"], "function": a["function"], "policy": a["policy"], "status": a["status"],
                  "expires_at": render.iso(a["expires_at"])} for a in runtime.store.approvals("PENDING")]
    if args.format == "json":
        print(json.dumps({"approvals": approvals}, indent=2))
    else:
        if not runtime.table:
            print("note: SAFETYCATCH_TABLE is not set, so approvals live only for one run", file=sys.stderr)
        render.pending_table(approvals)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from cli.provision import init_state_table

    runtime = _runtime(args)
    if not runtime.table:
        raise UsageError("init: set SAFETYCATCH_TABLE to the state table's name")
    created = init_state_table(runtime.clients(), runtime.table)
    print(f"state table {runtime.table}: {'created' if created else 'already there'} "
          f"({runtime.home_region})")
    return 0


def _kill_runtime(args: argparse.Namespace) -> Any:
    runtime = _runtime(args)
    if runtime.mode == "enforce" and not runtime.writes_state:
        raise UsageError(f"{args.command}: set SAFETYCATCH_TABLE to the state table: the kill's prior state must "
                         "outlive this run to be restored")
    return runtime


def _actor(runtime: Any) -> str:
    """Who runs the CLI, as AWS knows them (audited with the kill / restore)."""
    return f"{runtime.clients()('sts').get_caller_identity()['Arn']} (cli)"


def cmd_kill(args: argparse.Namespace) -> int:
    from chalicelib import killswitch

    runtime = _kill_runtime(args)
    try:
        result = killswitch.kill(runtime, args.function, args.reason, _actor(runtime))
    except killswitch.KillSwitchError as exc:
        raise UsageError(f"kill: {exc}") from exc
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        render.console.print(render.finding_lines(result, indent=""))
    if result["outcome"] in ("fixed", "dry-run"):
        return 0
    return _fail(f"kill: {args.function} not killed ({result['outcome']}): {result.get('detail') or result['message']}")


def cmd_restore(args: argparse.Namespace) -> int:
    from chalicelib import killswitch

    runtime = _kill_runtime(args)
    try:
        result = killswitch.restore(runtime, args.function, _actor(runtime))
    except killswitch.KillSwitchError as exc:
        raise UsageError(f"restore: {exc}") from exc
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        render.console.print(result["message"])
    return 0 if result["outcome"] in ("restored", "dry-run") else _fail(f"restore: {result['message']}")


def cmd_decide(args: argparse.Namespace) -> int:
    """``approve ID`` / ``deny ID``: the same decision code as the Slack buttons; updates the Slack message."""
    from chalicelib import approvals, slack_routes
    from chalicelib.handlers import reset_runtime

    runtime = _runtime(args)
    if not runtime.table:
        raise UsageError(f"{args.command}: set SAFETYCATCH_TABLE (approvals live in the state table)")
    reset_runtime(runtime)
    actor = "cli:" + str(runtime.clients()("sts").get_caller_identity()["Arn"])
    outcome = approvals.decide(runtime, args.command, args.id, actor)
    slack_routes.update_message(runtime, outcome.message_id)
    if not outcome.ok:
        raise UsageError(outcome.text)
    print(outcome.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cli.serve import serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"serve: --port {args.port} is not a TCP port")
    try:
        return serve(args.port, args.policies)
    except OSError as exc:
        raise UsageError(f"serve: cannot listen on port {args.port}: {exc.strerror or exc}") from exc


COMMANDS = {"scan": cmd_scan, "replay": cmd_replay, "demo": cmd_demo, "lint": cmd_lint, "explain": cmd_explain,
            "pending": cmd_pending, "init": cmd_init, "kill": cmd_kill, "restore": cmd_restore,
            "approve": cmd_decide, "deny": cmd_decide, "serve": cmd_serve, "check": check.run,
            "redrive": redrive.cmd_redrive}


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
