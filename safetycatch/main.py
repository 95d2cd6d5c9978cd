"""``safetycatch``: the operator CLI. Runs the same engine and handlers as the deployed bot.

Exit codes: 0 ok; 1 a finding at or above ``--fail-on``; 2 bad input, usage or configuration (one line on
stderr, no traceback). Each command's options and code live in one function or module (``safetycatch/scan.py``,
``safetycatch/replay.py``, ``safetycatch/undo.py``, ``safetycatch/history.py``, ``safetycatch/explain.py``); ``-v``
works before or after the command, ``--profile`` on every command that talks to AWS.

Example:
    $ safetycatch scan --format json --fail-on high
    $ safetycatch replay tests/events/lambda-UpdateFunctionConfiguration20150331v2.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from chalicelib.bot.runtime import ConfigError
from chalicelib.policy.settings import PolicyError
from safetycatch import render
from safetycatch.common import UsageError, actor, require_table, runtime_for
from safetycatch.events import EventFileError
from safetycatch.templates import TemplateError

__all__ = ["COMMANDS", "UsageError", "main"]

Command = Callable[[argparse.Namespace], int]

# Commands whose options and code live in their own module: (module, handler). A command imports only its own
# module (``safetycatch scan`` never imports doctor, the member template or Security Hub): the whole parser is
# built only when no command is named (``--help``) or the name is not one of these.
MODULES: dict[str, tuple[str, str]] = {
    "scan": ("safetycatch.scan", "cmd_scan"), "replay": ("safetycatch.replay", "cmd_replay"),
    "undo": ("safetycatch.undo", "cmd_undo"), "history": ("safetycatch.history", "cmd_history"),
    "redrive": ("safetycatch.redrive", "cmd_redrive"), "check": ("safetycatch.check", "run"),
    "doctor": ("safetycatch.doctor", "cmd_doctor"), "explain": ("safetycatch.explain", "cmd_explain"),
    "selftest": ("safetycatch.selftest", "cmd_selftest"),
}


def _lazy(command: str) -> Command:
    """The handler of a module command, imported when it runs."""
    def run(args: argparse.Namespace) -> int:
        module, name = MODULES[command]
        return int(getattr(importlib.import_module(module), name)(args) or 0)

    return run


def _add_module_parser(sub: Any, command: str, only: str | None, parents: list[argparse.ArgumentParser]) -> None:
    if only is None or only == command:
        importlib.import_module(MODULES[command][0]).add_parser(sub, parents)


def _named_command(argv: Sequence[str]) -> str | None:
    """The module command named on the command line (the first word that is not an option), if any.

    Example:
        >>> _named_command(["-v", "scan", "--format", "json"]), _named_command(["--help"])
        ('scan', None)
    """
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in MODULES else None


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("safetycatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _verbose() -> argparse.ArgumentParser:
    """``-v`` on every command (SUPPRESS: not given after the command keeps the value given before it)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="print the bot's structured log on stderr")
    return parent


def _aws() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--profile", metavar="P", help="the AWS profile to use (default: the boto3 chain's)")
    return parent


def _add_state_commands(sub: Any, remote: list[argparse.ArgumentParser]) -> None:
    pending = sub.add_parser("pending", parents=remote, help="approvals waiting for a decision, with the change "
                             "each proposes (needs SAFETYCATCH_TABLE)")
    pending.add_argument("--format", choices=("table", "json"), default="table")
    for verb, what in (("approve", "approve a pending fix and apply it"), ("deny", "deny a pending fix")):
        decide = sub.add_parser(verb, parents=remote, help=f"{what} (the fallback when Slack is unreachable)")
        decide.add_argument("id", metavar="ID", help="approval id (safetycatch pending)")


def _add_local_commands(sub: Any, local: list[argparse.ArgumentParser],
                        remote: list[argparse.ArgumentParser], only: str | None) -> None:
    lint = sub.add_parser("lint", parents=local, help="validate policy files and the mutelist (every problem)")
    lint.add_argument("dir", nargs="?", metavar="DIR",
                      help="policies directory (default: SAFETYCATCH_POLICIES, else the shipped policies)")
    _add_module_parser(sub, "explain", only, local)
    sub.add_parser("init", parents=remote, help="create what local runs need (the SAFETYCATCH_TABLE state table), "
                   "idempotently")
    serve = sub.add_parser("serve", parents=remote, help="serve the bot's Slack routes locally (worker inline)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--policies", metavar="DIR")
    demo = sub.add_parser("demo", parents=local, help="a self-contained tour on an embedded AWS (moto) - no account "
                          "needed")
    demo.add_argument("--keep", action="store_true", help="leave the demo account running and print its endpoint")


def _add_kill_commands(sub: Any, remote: list[argparse.ArgumentParser]) -> None:
    kill = sub.add_parser("kill", parents=remote,
                          help="throttle a runaway function to 0 now (its prior state is stored for restore)")
    kill.add_argument("function", metavar="FUNCTION", help="function name or ARN")
    kill.add_argument("--reason", default="manual kill from the CLI", help="why (audited and notified)")
    restore = sub.add_parser("restore", parents=remote,
                             help="put a killed function back exactly as it was before the kill")
    restore.add_argument("function", metavar="FUNCTION", help="function name or ARN")
    for command in (kill, restore):
        command.add_argument("--policies", metavar="DIR")
        command.add_argument("--format", choices=("table", "json"), default="table")


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``safetycatch: scan: unrecognized arguments: --bogus``), exit 2."""

    def error(self, message: str) -> Any:  # argparse's contract: never returns
        print(f"safetycatch: {self.prog.removeprefix('safetycatch').strip() or 'usage'}: "
              f"{' '.join(message.split())} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="safetycatch", description="Keep AWS Lambda functions out of the "
                                     "classic footguns: scan, replay events, approve fixes, kill runaway loops.")
    parser.add_argument("--version", action="version", version=f"safetycatch {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the bot's structured log on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    local, remote = [_verbose()], [_verbose(), _aws()]
    for command in ("scan", "replay", "undo", "history"):
        _add_module_parser(sub, command, only, remote)
    _add_state_commands(sub, remote)
    _add_kill_commands(sub, remote)
    _add_module_parser(sub, "redrive", only, remote)
    _add_module_parser(sub, "check", only, local)
    _add_module_parser(sub, "doctor", only, remote)
    _add_module_parser(sub, "selftest", only, remote)
    _add_local_commands(sub, local, remote, only)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the ``safetycatch`` script calls ``sys.exit(main())``)."""
    args = _parser(_named_command(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    if not args.verbose:
        from chalicelib.core.log import logger
        logger.setLevel("WARNING")
    render.adapt_to_output()
    try:
        code = int(COMMANDS[args.command](args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except _user_errors() as exc:
        return _fail(str(exc))
    except NoCredentialsError:
        return _fail("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
    except NoRegionError:
        return _fail("no AWS region set (use --region or AWS_DEFAULT_REGION)")
    except ClientError as exc:  # one line, never a raw response body (a proxy's HTML page, unparsed XML)
        from chalicelib.core.aws import describe_error

        return _fail(f"AWS refused {describe_error(exc, operation=True)}")
    except BotoCoreError as exc:
        from chalicelib.core.aws import plain

        return _fail(f"AWS: {plain(exc, 300)}")
    except ModuleNotFoundError as exc:  # an installed CLI without the demo extra (moto, chalice) or a checkout
        if str(exc.name).split(".")[0] in ("cfnlint", "samtranslator"):  # base dependencies, removed since
            return _fail(f"{args.command}: needs {exc.name}, which this installation lacks: pip install "
                         "'cfn-lint>=1.20,<2' 'aws-sam-translator>=1.90,<2' (the base install of safetycatch has them)")
        return _fail(f"{args.command}: needs {exc.name}, which this installation lacks: pipx install "
                     "'safetycatch[demo]' (or run it from a checkout: make demo)")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix (one line, exit 2); evaluated only when something was raised."""
    from safetycatch.explain import UnknownPolicy

    return UsageError, PolicyError, ConfigError, EventFileError, TemplateError, UnknownPolicy


def _closed_pipe() -> int:
    """The reader went away (``safetycatch scan --format json | head``): stop quietly. Python would otherwise
    complain when it flushes stdout at exit, so stdout is pointed at /dev/null first."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass
    return 141  # 128 + SIGPIPE, as a shell reports a reader that went away; never 1 (a failing finding)


def _fail(message: str) -> int:
    print(f"safetycatch: {' '.join(message.split())}", file=sys.stderr)
    return 2


def cmd_demo(args: argparse.Namespace) -> int:
    from safetycatch.local.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_lint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chalicelib.policy.settings import lint_dir, shipped_policies

    shipped = shipped_policies()  # a checkout's, or the installed copy
    args.dir = args.dir or os.environ.get("SAFETYCATCH_POLICIES") or str(shipped)
    policy_set, problems = lint_dir(Path(args.dir))
    if problems:
        for problem in problems:
            print(f"safetycatch: {problem}", file=sys.stderr)
        if len(problems) > 1:
            files = len({p.file for p in problems})
            print(f"safetycatch: lint: {render.plural(len(problems), 'problem')} in "
                  f"{render.plural(files, 'file')}", file=sys.stderr)
        return 2
    ids = ", ".join(sorted(policy_set.policies)) or "none"
    mutes = len(policy_set.mutes.mutes)
    print(f"{args.dir}: OK - {render.plural(len(policy_set.policies), 'policy', 'policies')} ({ids}), settings"
          + (f" and {render.plural(mutes, 'mute')}" if mutes else ""))
    for mute in policy_set.mutes.expired(time.time()):
        print(f"note: a mute of {mute.policy} / {mute.function} expired on {mute.expires}: its findings are back")
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    from chalicelib.act.fixes import describe_change

    runtime = runtime_for(args)
    runtime.store.expire_due() if runtime.writes_state else None
    approvals = []
    for a in runtime.store.approvals("PENDING"):
        current, proposed = describe_change(a.get("spec") or {})
        approvals.append({"id": a["id"], "function": a["function"], "policy": a["policy"], "status": a["status"],
                          "expires_at": render.iso(a["expires_at"]), "severity": a.get("severity", ""),
                          "message": a.get("message", ""), "fix": a.get("spec") or None,
                          "change": f"{', '.join(current.splitlines())} -> {', '.join(proposed.splitlines())}"})
    if args.format == "json":
        print(json.dumps({"approvals": approvals}, indent=2))
    else:
        if not runtime.table:
            print("note: SAFETYCATCH_TABLE is not set, so approvals live only for one run", file=sys.stderr)
        render.pending_table(approvals)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from safetycatch.provision import init_state_table

    runtime = runtime_for(args)
    require_table(runtime, "init", "the state table's name")
    created = init_state_table(runtime.clients(), runtime.table)
    print(f"state table {runtime.table}: {'created' if created else 'already there'} "
          f"({runtime.home_region})")
    return 0


def _kill_runtime(args: argparse.Namespace) -> Any:
    runtime = runtime_for(args)
    if runtime.mode == "enforce" and not runtime.writes_state:
        raise UsageError(f"{args.command}: set SAFETYCATCH_TABLE to the state table: the kill's prior state must "
                         "outlive this run to be restored")
    return runtime


def cmd_kill(args: argparse.Namespace) -> int:
    from chalicelib.killswitch import kill as killswitch

    runtime = _kill_runtime(args)
    try:
        result = killswitch.kill(runtime, args.function, args.reason, actor(runtime))
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
    from chalicelib.killswitch import kill as killswitch

    runtime = _kill_runtime(args)
    try:
        result = killswitch.restore(runtime, args.function, actor(runtime))
    except killswitch.KillSwitchError as exc:
        raise UsageError(f"restore: {exc}") from exc
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        render.console.print(result["message"])
    return 0 if result["outcome"] in ("restored", "dry-run") else _fail(f"restore: {result['message']}")


def cmd_decide(args: argparse.Namespace) -> int:
    """``approve ID`` / ``deny ID``: the same decision code as the Slack buttons; updates the Slack message."""
    from chalicelib.bot import slack_routes
    from chalicelib.bot.handlers import reset_runtime
    from chalicelib.people import decisions

    runtime = runtime_for(args)
    require_table(runtime, args.command, "approvals live in the state table")
    reset_runtime(runtime)
    outcome = decisions.decide(runtime, args.command, args.id, actor(runtime))
    slack_routes.update_message(runtime, outcome.message_id)
    if not outcome.ok:
        raise UsageError(outcome.text)
    print(outcome.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from safetycatch.local.serve import serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"serve: --port {args.port} is not a TCP port")
    try:
        return serve(args.port, args.policies)
    except OSError as exc:
        raise UsageError(f"serve: cannot listen on port {args.port}: {exc.strerror or exc}") from exc


COMMANDS: dict[str, Command] = {
    "demo": cmd_demo, "lint": cmd_lint, "pending": cmd_pending, "init": cmd_init, "kill": cmd_kill,
    "restore": cmd_restore, "approve": cmd_decide, "deny": cmd_decide, "serve": cmd_serve,
    **{command: _lazy(command) for command in MODULES},
}


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
