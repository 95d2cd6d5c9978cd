"""What the CLI's commands share: the usage error (one line, exit 2), the runtime from the command's options,
the refusal to act without a state table, and who the operator is.

Example:
    runtime = runtime_for(args)            # --policies, --region, --profile if the command has them
    refuse_acting_without_state(runtime, "scan --fix", args.no_state)
"""

from __future__ import annotations

import argparse
from typing import Any


class UsageError(Exception):
    """Bad input from the operator: printed as one line, exit 2."""


def runtime_for(args: argparse.Namespace, mode: str | None = None) -> Any:
    """The runtime for a command: policies, region and profile from its options, the rest from the environment."""
    from chalicelib.bot.runtime import Runtime

    return Runtime.from_env(getattr(args, "policies", None), mode=mode, region=getattr(args, "region", None),
                            profile=getattr(args, "profile", None))


def refuse_acting_without_state(runtime: Any, what: str, no_state: bool = False) -> None:
    """Acting (``--fix``) for real without a state table loses the prior values undo needs: refuse, unless the
    operator said ``--no-state``. Dry-run and off make no change, so they need no table."""
    if runtime.mode == "enforce" and not runtime.table and not no_state:
        raise UsageError(f"{what}: set SAFETYCATCH_TABLE to the state table (safetycatch init creates it): without "
                         "it the prior values that undo needs die with this run; --no-state acts anyway")


def require_table(runtime: Any, what: str, why: str) -> None:
    if not runtime.table:
        raise UsageError(f"{what}: set SAFETYCATCH_TABLE ({why})")


def actor(runtime: Any) -> str:
    """Who runs the CLI, as AWS knows them (audited with what they do)."""
    return f"cli:{runtime.clients()('sts').get_caller_identity()['Arn']}"
