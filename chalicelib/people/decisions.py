"""What a person asks of safetycatch, decided in one place for Slack (buttons, ``/safetycatch``) and the CLI.

* :func:`decide`: approve / deny an approval, undo / restore an applied fix, by its opaque id
  (``chalicelib.people.approvals``, ``chalicelib.people.undo``);
* :func:`on_function`: ``kill`` / ``restore`` / ``status`` FUNCTION (``chalicelib.killswitch.kill``, the state table).

The caller has already checked that the person may decide; nothing here knows Slack: answers are plain text
(an :class:`~chalicelib.people.approvals.Outcome`) or a :class:`FunctionStatus` that Slack renders.

Example:
    outcome = decide(runtime, "approve", approval_id, actor="U0123ABCD")
    outcome.ok, outcome.status
    # -> (True, 'APPLIED')
    on_function(runtime, "kill", "orders-api", actor="U0123ABCD").text
    # -> 'Runaway loop stopped: orders-api throttled to 0. ...'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import describe_error
from chalicelib.core.model import FunctionRef, FunctionSnapshot
from chalicelib.killswitch import kill as killswitch
from chalicelib.people.approvals import APPROVAL_VERBS, Outcome, decide_approval, refused
from chalicelib.people.undo import FIX_VERBS, undo_fix

VERBS = APPROVAL_VERBS + FIX_VERBS
FUNCTION_COMMANDS = ("status", "kill", "restore")
_ID = re.compile(r"^[0-9A-Za-z_-]{8,64}$")


def decide(runtime: Any, verb: str, item_id: str, actor: str) -> Outcome:
    """Carry out ``verb`` (approve, deny, undo, restore) on the approval / fix ``item_id`` for ``actor``.

    The caller has already checked that ``actor`` may decide. Never raises for bad input.
    """
    if verb not in VERBS:
        return refused(f"Unknown action {verb[:20]!r}.")
    if not isinstance(item_id, str) or not _ID.match(item_id):
        return refused(f"{str(item_id)[:80]!r} is not a safetycatch request id.")
    if runtime.mode != "enforce":
        return refused(f"safetycatch is in {runtime.mode} mode (SAFETYCATCH_MODE): nothing is changed.")
    if verb in FIX_VERBS:
        return undo_fix(runtime, item_id, actor)
    return decide_approval(runtime, verb, item_id, actor)


@dataclass
class FunctionStatus:
    """What safetycatch knows about one function: its configuration (None when it does not exist), its open
    requests and its recent fixes (newest first)."""

    ref: FunctionRef
    snapshot: FunctionSnapshot | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    recent_fixes: list[dict[str, Any]] = field(default_factory=list)


def function_status(runtime: Any, ref: FunctionRef) -> FunctionStatus:
    """The function as it is now, with its pending approvals and its 5 newest fixes."""
    snapshot = runtime.engine(ref.account, ref.region).inventory.function(ref)
    return FunctionStatus(ref, snapshot, runtime.store.approvals("PENDING", ref.arn),
                          runtime.store.fixes_for(ref.arn)[:5])


def on_function(runtime: Any, command: str, arg: str, actor: str) -> Outcome | FunctionStatus:
    """``status`` / ``kill`` / ``restore`` FUNCTION (a name in the bot's account and home region, or an ARN)."""
    ref = FunctionRef.parse(arg, runtime.bot_account(), runtime.home_region)
    if ref is None:
        return refused(f"`{arg[:80]}` is not a Lambda function name or ARN.")
    if command == "status":
        return function_status(runtime, ref)
    if command not in FUNCTION_COMMANDS:
        return refused(f"Unknown command {command[:20]!r}.")
    try:
        if command == "kill":
            result = killswitch.kill(runtime, ref.arn, reason=f"/safetycatch kill by {actor}", actor=actor)
        else:
            result = killswitch.restore(runtime, ref.arn, actor=actor)
    except killswitch.KillSwitchError as exc:  # a refusal is an answer, never silence
        return refused(f"{command} {ref.name} refused: {exc}", {"function": ref.arn})
    except (ClientError, BotoCoreError) as exc:  # AWS said no (a member role it may not assume): an answer too
        return refused(f"{command} {ref.name} failed: {describe_error(exc)}", {"function": ref.arn}, "failed")
    return Outcome(True, str(result.get("outcome", "")), _result_text(command, ref, result), function=ref.arn)


def _result_text(command: str, ref: FunctionRef, result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("message"), str):
        return str(result["message"])
    facts = ", ".join(f"{k}: {v}" for k, v in (result or {}).items() if isinstance(v, (str, int, float, bool)))
    return f"{command} {ref.name}: {facts or 'done'}"
