"""Behind ``POST /slack/actions``, ``POST /slack/commands`` and the ``slack_worker`` Lambda.

The routes must answer Slack within 3 seconds, so they only *gate* and hand over:

1. verify the signature with slack-sdk's SignatureVerifier (v0:timestamp:body, 5-minute window) before
   anything else - 401 and no side effect otherwise;
2. refuse a replay of a request already seen (the signature is claimed once in the state table for longer
   than the window, so a captured request resent within the window is refused too);
3. check the clicker against ``approvers`` / ``approver_groups`` (policies/settings.yaml);
4. store the verified task in the state table and hand the worker its id only, then answer 200 at once.

The worker (:func:`run_worker`) acts only on a task a route stored (taken once; a direct invoke naming an approver
is refused and audited under ``slack-worker``), then does the slow part: re-checks the approver, carries out the
decision (``decisions.decide``), re-renders and ``chat.update``\\ s the original message, and answers the clicker
ephemerally when something was refused. ``SAFETYCATCH_WORKER``: ``inline`` runs it in this process right after the
route answers (local runs, tests, the demo); a function name or ARN invokes that Lambda asynchronously
(``InvocationType=Event``); unset, the deployed API handler ``<app>-<stage>`` invokes Chalice's
``<app>-<stage>-slack_worker``, and outside Lambda it runs inline.

Example:
    answer = on_actions(raw_body, headers)   # what app.py's route returns
    answer["status_code"]
    # -> 200
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from chalicelib.core.log import logger
from chalicelib.people import decisions
from chalicelib.slack.client import SIGNATURE_WINDOW_SECONDS, Slack, SlackUnavailable, escape
from chalicelib.slack.messages import BUTTON_ACTIONS, refresh, status_text

WORKER_NAME = "slack_worker"
MAX_BODY_BYTES = 512 * 1024
REPLAY_TTL_SECONDS = 2 * SIGNATURE_WINDOW_SECONDS + 60
TASK_TTL_SECONDS = 900  # a stored task the worker has not taken by then is stale (a click is answered in seconds)
NOT_A_TASK = "not a task the route created"
_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
COMMANDS = decisions.FUNCTION_COMMANDS
USAGE = "Usage: `/safetycatch status FUNCTION`, `/safetycatch kill FUNCTION`, `/safetycatch restore FUNCTION`"

_inline: list[threading.Thread] = []
_inline_lock = threading.Lock()


def _answer(status: int, body: Any = "", content_type: str = "application/json") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"status_code": status, "body": text, "headers": {"Content-Type": content_type}}


def _ephemeral(text: str) -> dict[str, Any]:
    return _answer(200, {"response_type": "ephemeral", "text": text})


def _runtime() -> Any:
    from chalicelib.bot.handlers import current_runtime

    return current_runtime()


def _text(value: Any, limit: int = 300) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _gate(runtime: Any, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """None when the request is Slack's and new; else the answer that refuses it (no side effect)."""
    slack: Slack | None = getattr(runtime, "slack", None)
    if slack is None:
        logger.warning("slack request but SAFETYCATCH_SLACK_SECRET is not set")
        return _answer(503, {"error": "Slack is not configured"})
    if not isinstance(body, (bytes, str)) or len(body) > MAX_BODY_BYTES or not _utf8(body):
        return _answer(401, {"error": "invalid request"})  # Slack sends UTF-8; anything else is not Slack
    try:
        valid = slack.verify(body, headers)
    except SlackUnavailable as exc:
        logger.error("cannot verify slack request", extra={"error": str(exc)})
        return _answer(503, {"error": "cannot verify the request now"})
    if not valid:
        logger.warning("slack request refused: bad or stale signature")
        return _answer(401, {"error": "invalid signature"})
    if stranger := _foreign_workspace_or_app(runtime.settings, body):
        logger.warning("slack request refused: not the pinned workspace / app", extra={"from": stranger})
        return _answer(403, {"error": "this workspace or app is not allowed"})
    signature = next((v for k, v in headers.items() if k.lower() == "x-slack-signature"), "")
    if not runtime.store.claim("slack-request#" + hashlib.sha256(signature.encode()).hexdigest(),
                               REPLAY_TTL_SECONDS):
        logger.warning("slack request refused: replayed")
        return _answer(401, {"error": "replayed request"})
    return None


def _utf8(body: bytes | str) -> bool:
    try:
        body.decode("utf-8") if isinstance(body, bytes) else body.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _foreign_workspace_or_app(settings: Any, body: bytes | str) -> str:
    """'' when the request comes from a pinned workspace (``slack_team_ids``) and app (``slack_app_id``), or when
    nothing is pinned; else the workspace / app it names. A signature proves the request is for this app, not
    that it comes from the workspace the bot serves (a distributed app shares its signing secret)."""
    form = {k: v[0] for k, v in parse_qs(_decode(body)).items() if v}
    payload = _payload(body) if "payload" in form else {}
    team_object = payload.get("team")
    team = _text(form.get("team_id") or (team_object.get("id") if isinstance(team_object, dict) else ""), 40)
    app_id = _text(form.get("api_app_id") or payload.get("api_app_id"), 40)
    if settings.slack_team_ids and team not in settings.slack_team_ids:
        return f"workspace {team or '(none)'}"
    if settings.slack_app_id and app_id != settings.slack_app_id:
        return f"app {app_id or '(none)'}"
    return ""


def authorised(runtime: Any, user: str) -> bool:
    """``user`` is an approver (``approvers``) or in an approver group (``approver_groups``)."""
    settings = runtime.settings
    return runtime.slack.is_approver(user, settings.approvers, settings.approver_groups)


def not_authorised_text(runtime: Any) -> str:
    who = ", ".join([*(f"<@{u}>" for u in runtime.settings.approvers),
                     *(f"<!subteam^{g}>" for g in runtime.settings.approver_groups)]) or "nobody (no approvers set)"
    return f":lock: You are not authorised to decide safetycatch changes; nothing changed. Approvers: {who}."


def _gated(route: str, answer: Callable[[Any, bytes], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A Slack route: the request gate (:func:`_gate`) first, then ``answer(runtime, body)``; never raises."""
    def handle(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        try:
            runtime = _runtime()
            return _gate(runtime, body, headers) or answer(runtime, body)
        except Exception:  # noqa: BLE001 - hostile input never raises out of a handler
            logger.exception(f"slack {route} failed")
            return _answer(500, {"error": "internal error"})

    handle.__name__ = handle.__qualname__ = f"on_{route}s"
    handle.__doc__ = answer.__doc__
    return handle


def _action(runtime: Any, body: bytes) -> dict[str, Any]:
    """``POST /slack/actions``: a button click (``payload`` form field, ``block_actions``)."""
    payload = _payload(body)
    actions = payload.get("actions") if payload.get("type") == "block_actions" else None
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    verb = _text(action.get("action_id"), 40)
    if verb not in BUTTON_ACTIONS:
        return _answer(200)
    task = {"kind": "action", "verb": verb, "id": _text(action.get("value"), 80),
            "user": _text((payload.get("user") or {}).get("id"), 40),
            "channel": _text((payload.get("channel") or {}).get("id")
                             or (payload.get("container") or {}).get("channel_id"), 40),
            "response_url": _text(payload.get("response_url"), 500)}
    if not authorised(runtime, task["user"]):
        task = {**task, "kind": "tell", "text": not_authorised_text(runtime)}
    dispatch(runtime, task)
    return _answer(200)


def _command(runtime: Any, body: bytes) -> dict[str, Any]:
    """``POST /slack/commands``: ``/safetycatch status|kill|restore FUNCTION``."""
    form = {k: v[0] for k, v in parse_qs(_decode(body)).items() if v}
    words = _text(form.get("text"), 300).split()
    if len(words) != 2 or words[0].lower() not in COMMANDS:
        return _ephemeral(USAGE)
    user = _text(form.get("user_id"), 40)
    if not authorised(runtime, user):
        return _ephemeral(not_authorised_text(runtime))
    dispatch(runtime, {"kind": "command", "command": words[0].lower(), "arg": words[1], "user": user,
                       "channel": _text(form.get("channel_id"), 40),
                       "response_url": _text(form.get("response_url"), 500)})
    return _ephemeral(f"safetycatch: {words[0].lower()} {escape(words[1])} - working on it…")


on_actions = _gated("action", _action)
on_commands = _gated("command", _command)


def _decode(body: Any) -> str:
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")


def _payload(body: Any) -> dict[str, Any]:
    try:
        raw = parse_qs(_decode(body)).get("payload", [""])[0]
        payload = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


# -- handing over to the worker ----------------------------------------------------------------


def worker_target() -> str:
    """'' for inline, else the worker Lambda to invoke (see the module doc)."""
    setting = os.environ.get("SAFETYCATCH_WORKER", "").strip()
    if setting == "inline":
        return ""
    if setting:
        return setting
    own = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip()
    return f"{own}-{WORKER_NAME}" if own else ""


def dispatch(runtime: Any, task: dict[str, Any]) -> None:
    """Store the verified ``task`` (``StateStore.put_task``) and hand its id, nothing else, to the worker: async
    Lambda invoke, or a thread in this process (inline). The worker acts only on a task it finds stored."""
    handed = {"task": runtime.store.put_task(task, TASK_TTL_SECONDS)}
    target = worker_target()
    if target:
        runtime.clients()("lambda").invoke(FunctionName=target, InvocationType="Event",
                                           Payload=json.dumps(handed).encode())
        return
    thread = threading.Thread(target=run_worker, args=(handed, runtime), name="safetycatch-worker")
    with _inline_lock:
        _inline[:] = [t for t in _inline if t.is_alive()]
        _inline.append(thread)
    thread.start()


def wait_inline(timeout: float = 60.0) -> None:
    """Wait for inline workers started so far (tests, the demo, ``serve`` on shutdown)."""
    with _inline_lock:
        threads = list(_inline)
    for thread in threads:
        thread.join(timeout)


# -- the worker --------------------------------------------------------------------------------


def stored_task(runtime: Any, handed: Any) -> dict[str, Any] | None:
    """The task a route stored under the id the worker was handed (taken once); None for anything else, which
    is refused and recorded (audit subject ``slack-worker``): a direct invoke is a claim, not a click."""
    task_id = handed.get("task") if isinstance(handed, dict) and set(handed) == {"task"} else None
    task = runtime.store.take_task(task_id) if isinstance(task_id, str) and _TASK_ID.match(task_id) else None
    if task is None:
        shown = json.dumps(handed, default=str)[:300] if isinstance(handed, dict) else type(handed).__name__
        logger.error("slack worker refused a task", extra={"handed": shown})
        runtime.store.audit("slack-worker", {"policy": "slack", "mode": "manual", "outcome": "refused",
                                             "message": f"{NOT_A_TASK}: nothing done", "context": shown})
    return task


def run_worker(handed: Any, runtime: Any = None) -> dict[str, Any]:
    """The ``slack_worker`` Lambda: carry out one task a route stored (``handed``: ``{"task": id}``). Never
    raises."""
    try:
        runtime = runtime or _runtime()
        task = stored_task(runtime, handed)
        if task is None:
            return {"ok": False, "text": NOT_A_TASK}
        if runtime.slack is None:
            return {"ok": False, "text": "not a task"}
        user, channel = _text(task.get("user"), 40), _text(task.get("channel"), 40)
        response_url, kind = _text(task.get("response_url"), 500), task.get("kind")
        if kind == "tell":
            runtime.slack.tell(user, _text(task.get("text"), 1000), channel, response_url)
            return {"ok": True}
        if kind not in ("action", "command"):
            return {"ok": False, "text": "unknown task"}
        if not authorised(runtime, user):  # the worker writes: it checks again, whatever invoked it
            runtime.slack.tell(user, not_authorised_text(runtime), channel, response_url)
            return {"ok": False, "text": "not authorised"}
        if kind == "command":
            text = run_command(runtime, _text(task.get("command"), 20), _text(task.get("arg"), 256), user)
            runtime.slack.tell(user, text, channel, response_url)
            return {"ok": True, "text": text}
        outcome = decisions.decide(runtime, _text(task.get("verb"), 20), _text(task.get("id"), 80), actor=user)
        update_message(runtime, outcome.message_id)
        if not outcome.ok:
            runtime.slack.tell(user, escape(outcome.text), channel, response_url)
        logger.info("slack decision", extra={"user": user, "verb": task.get("verb"), "status": outcome.status,
                                             "function": outcome.function})
        return {"ok": outcome.ok, "status": outcome.status, "text": outcome.text}
    except Exception:  # noqa: BLE001 - a worker failure is logged, never re-raised into a retry storm
        logger.exception("slack worker failed")
        return {"ok": False, "text": "internal error"}


def update_message(runtime: Any, message_id: str) -> None:
    """Re-render the message showing a decision (no-op without Slack or without a posted message)."""
    if not message_id or getattr(runtime, "slack", None) is None:
        return
    try:
        refresh(runtime.store, runtime.slack, message_id)
    except SlackUnavailable as exc:
        logger.warning("could not update the slack message", extra={"message_id": message_id, "error": str(exc)})


def run_command(runtime: Any, command: str, arg: str, user: str) -> str:
    """``status`` / ``kill`` / ``restore`` FUNCTION (``decisions.on_function``), as mrkdwn for the person who asked."""
    answer = decisions.on_function(runtime, command, arg, user)
    if isinstance(answer, decisions.FunctionStatus):
        return status_text(answer)
    return escape(answer.text)
