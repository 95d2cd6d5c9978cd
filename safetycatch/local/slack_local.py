"""A local Slack for tests and the demo: the few Web API methods the bot uses, plus response_url, over HTTP.

Speaks ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``usergroups.users.list`` and ``auth.test``
under ``/api/`` (so ``SAFETYCATCH_SLACK_API_URL=http://127.0.0.1:<port>``), and ``POST /response/<token>`` for
response URLs it hands out. It checks the bot token, records every call, keeps the current version of every
message, and injects faults: ``fail(429, retry_after=1)``, ``fail(500)``, ``down()`` / ``up()``.

It also plays Slack's side of a click: :func:`signed` signs a body exactly as Slack does
(``v0=HMAC-SHA256(signing_secret, "v0:<timestamp>:<body>")``) and :func:`block_actions` / :func:`slash_command`
build the form bodies Slack sends.

Example:
    with LocalSlack(token="xoxb-test") as slack:
        os.environ["SAFETYCATCH_SLACK_API_URL"] = slack.url
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from safetycatch.local.sandbox import free_port

TEAM = "T0SAFETY1"
APP = "A0SAFETY1"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    versions: int = 1


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    methods: tuple[str, ...] = ()


@dataclass
class _State:
    token: str
    groups: dict[str, list[str]]
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    responses: dict[str, tuple[str, str]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Any = field(default_factory=lambda: itertools.count(1))


class LocalSlack:
    """The local Slack server; a context manager that starts it on a free loopback port."""

    def __init__(self, token: str = "xoxb-local-test-token", groups: dict[str, list[str]] | None = None,
                 port: int = 0) -> None:
        self.state = _State(token=token, groups=dict(groups or {}))
        self.port = port or free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def up(self) -> LocalSlack:
        """Start (or restart, on the same port) serving."""
        if self._server is None:
            handler = type("Handler", (_Handler,), {"state": self.state, "base": self.url})
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, name="local-slack", daemon=True)
            self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: clients get connection refused until :meth:`up`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSlack:
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()

    # -- faults and inspection -----------------------------------------------------------------------

    def fail(self, status: int, retry_after: int | None = None, times: int = 1, methods: tuple[str, ...] = ()) -> None:
        """The next ``times`` API calls (of ``methods``, or any) answer ``status`` (with Retry-After)."""
        with self.state.lock:
            self.state.faults.extend(Fault(status, retry_after, methods) for _ in range(times))

    def calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self.state.calls if method is None or c.method == method]

    def posted(self) -> list[Message]:
        """Messages in the order they were posted (their current version)."""
        return sorted(self.state.messages.values(), key=lambda m: float(m.ts))

    def message(self, channel: str, ts: str) -> Message:
        return self.state.messages[(channel, ts)]

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        return list(self.state.ephemerals)

    def response_url(self, channel: str, ts: str) -> str:
        """A response_url for a click on message (channel, ts), as Slack would put in the payload."""
        token = hashlib.sha256(f"{channel}/{ts}/{time.time_ns()}".encode()).hexdigest()[:24]
        self.state.responses[token] = (channel, ts)
        return f"{self.url}/response/{token}"


class _Handler(BaseHTTPRequestHandler):
    state: _State
    base: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8" if not isinstance(body, str)
                         else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _args(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        if "json" in (self.headers.get("Content-Type") or ""):
            return {**query, **(json.loads(raw) if raw else {})}
        return {**query, **{k: v[0] for k, v in parse_qs(raw).items()}}

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        args = self._args()
        if path.startswith("/response/"):
            return self._response_url(path.rsplit("/", 1)[-1], args)
        method = path.removeprefix("/api/")
        with self.state.lock:
            fault = next((f for f in self.state.faults if not f.methods or method in f.methods), None)
            if fault:
                self.state.faults.remove(fault)
        if fault:
            self.state.calls.append(Call(method, args, fault.status))
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return self._reply(fault.status, {"ok": False, "error": "ratelimited" if fault.status == 429
                                              else "internal_error"}, headers)
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token", "")
        if token != self.state.token:
            self.state.calls.append(Call(method, args, 200))
            return self._reply(200, {"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        result = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        self.state.calls.append(Call(method, args, 200))
        self._reply(200, result)

    # -- Web API methods ---------------------------------------------------------------------------

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self.state.clock):06d}"

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.base + "/", "team": "safetycatch-local", "user": "safetycatch",
                "team_id": TEAM, "user_id": "U0SAFEBOT", "bot_id": "B0SAFEBOT"}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, blocks = args.get("channel"), _blocks(args.get("blocks"))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        ts = self._ts()
        with self.state.lock:
            self.state.messages[(channel, ts)] = Message(channel, ts, args.get("text", ""), blocks)
        return {"ok": True, "channel": channel, "ts": ts,
                "message": {"type": "message", "text": args.get("text", ""), "ts": ts, "blocks": blocks}}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        key = (args.get("channel"), args.get("ts"))
        with self.state.lock:
            message = self.state.messages.get(key)  # type: ignore[arg-type]
            if message is None:
                return {"ok": False, "error": "message_not_found"}
            message.text, message.blocks = args.get("text", message.text), _blocks(args.get("blocks"))
            message.versions += 1
        return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        self.state.ephemerals.append({"channel": args["channel"], "user": args["user"], "text": args.get("text", ""),
                                      "via": "chat.postEphemeral"})
        return {"ok": True, "message_ts": self._ts()}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup", "")
        if group not in self.state.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.state.groups[group])}

    # -- response_url --------------------------------------------------------------------------------

    def _response_url(self, token: str, body: dict[str, Any]) -> None:
        target = self.state.responses.get(token)
        self.state.calls.append(Call("response_url", body, 200 if target else 404))
        if target is None:
            return self._reply(404, "no_such_response_url")
        if body.get("replace_original") in (True, "true") and body.get("response_type") != "ephemeral":
            with self.state.lock:
                message = self.state.messages.get(target)
                if message:
                    message.text, message.blocks = body.get("text", ""), _blocks(body.get("blocks"))
                    message.versions += 1
        else:
            self.state.ephemerals.append({"channel": target[0], "text": body.get("text", ""), "via": "response_url"})
        self._reply(200, "ok")


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value) if value else []
    return list(value or [])


# -- Slack's side of a request -------------------------------------------------------------------


def signed(body: str, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with ``body``: X-Slack-Request-Timestamp and X-Slack-Signature (v0, HMAC-SHA256)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}"}


def block_actions(user: str, action_id: str, value: str, channel: str, ts: str, response_url: str = "",
                  message: Message | None = None, team: str = TEAM, app_id: str = APP) -> str:
    """The form body of a button click (``payload=<block_actions JSON>``), as Slack posts it."""
    now = f"{time.time():.6f}"
    payload = {
        "type": "block_actions", "team": {"id": team, "domain": "safetycatch-local"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
        "api_app_id": app_id, "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.{abs(hash((user, value))) % 10**12}.abcdef",
        "channel": {"id": channel, "name": "safetycatch"},
        "message": {"type": "message", "ts": ts, "text": message.text if message else "",
                    "blocks": message.blocks if message else []},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"b-{value[:12]}", "value": value,
                     "text": {"type": "plain_text", "text": action_id.capitalize()}, "action_ts": now}],
    }
    return urlencode({"payload": json.dumps(payload)})


def slash_command(user: str, text: str, channel: str = "C0SAFETY1", response_url: str = "", team: str = TEAM,
                  app_id: str = APP) -> str:
    """The form body of ``/safetycatch <text>``."""
    return urlencode({"token": "deprecated-verification-token", "team_id": team, "team_domain": "safetycatch-local",
                      "channel_id": channel, "channel_name": "safetycatch", "user_id": user,
                      "user_name": user.lower(), "command": "/safetycatch", "text": text,
                      "api_app_id": app_id, "response_url": response_url,
                      "trigger_id": f"{int(time.time())}.1.abcdef"})
