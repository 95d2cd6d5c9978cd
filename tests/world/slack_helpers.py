"""Helpers for the Slack tests: a bot wired to moto and the local Slack, and Slack's side of a click."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from chalice.test import Client

import app as app_module
from chalicelib.bot import handlers, slack_routes
from chalicelib.bot.runtime import Runtime
from safetycatch.local.slack_local import LocalSlack, Message, block_actions, signed, slash_command

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-0000-safetycatch"
CHANNEL = "C0SAFETY1"
APPROVER, GROUP_MEMBER, OUTSIDER = "U0APPROVER", "U0SECTEAM1", "U0INTRUDER"
GROUP = "S0SECTEAM"


def policies_dir(tmp: Path, settings_extra: dict[str, Any] | None = None, **modes: str) -> Path:
    """The repo's policies with approvers set, ``settings_extra`` added to settings.yaml, and ``modes``
    ({"apigw_timeout": "approve"}) overridden."""
    out = tmp / "policies"
    shutil.copytree(ROOT / "policies", out, dirs_exist_ok=True)
    settings = yaml.safe_load((out / "settings.yaml").read_text())
    settings.update(approvers=[APPROVER], approver_groups=[GROUP], **(settings_extra or {}))
    (out / "settings.yaml").write_text(yaml.safe_dump(settings))
    for policy, mode in modes.items():
        (out / f"{policy.replace('_', '-')}.yaml").write_text(f"mode: {mode}\n")
    return out


class SlackClock:
    """The time of the Slack tests, for Slack (which signs each request) and the bot (which verifies it and caches
    group membership): a fixed start, one second more for each request signed. Nothing depends on how fast the
    machine runs: no two requests share a timestamp (so no two signatures of one body coincide and look like a
    replay), a timestamp is "6 minutes old" exactly, and a cache never expires between a route and its worker."""

    def __init__(self, start: int = 1_750_000_000) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def tick(self) -> int:
        """The next request's timestamp (a second after the previous one)."""
        self.now += 1
        return int(self.now)


@dataclass
class Bot:
    """The deployed bot's shape in one process: routes (chalice test client), worker inline, local Slack, and the
    clock both sides share (see :class:`SlackClock`)."""

    runtime: Runtime
    slack: LocalSlack
    client: Client
    clock: SlackClock = field(default_factory=SlackClock)

    def __post_init__(self) -> None:
        self.runtime.slack.clock = self.clock  # the verifier's window and the group cache run on the test's time

    def post(self, path: str, body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET,
             headers: dict[str, str] | None = None) -> Any:
        stamp = self.clock.tick() if timestamp is None else timestamp
        response = self.client.http.post(path, headers=headers or signed(body, secret, stamp), body=body.encode())
        slack_routes.wait_inline()
        return response

    def click(self, user: str, action: str, value: str, message: Message | None = None, **kwargs: Any) -> Any:
        message = message or self.slack.posted()[-1]
        body = block_actions(user, action, value, message.channel, message.ts,
                             self.slack.response_url(message.channel, message.ts), message)
        return self.post("/slack/actions", body, **kwargs)

    def command(self, user: str, text: str) -> Any:
        return self.post("/slack/commands", slash_command(user, text, CHANNEL, self.slack.response_url(CHANNEL, "0")))


def buttons(message: Message) -> list[dict[str, Any]]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def text_of(message: Message) -> str:
    return json.dumps(message.blocks)


def configure_slack(aws: Any, monkeypatch: Any, slack: LocalSlack) -> None:
    """Slack settings as deployed: the credentials in Secrets Manager, the channel, the local Slack, the worker
    inline."""
    create_secret(aws)
    for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                       "SAFETYCATCH_SLACK_API_URL": slack.url, "SAFETYCATCH_WORKER": "inline"}.items():
        monkeypatch.setenv(key, value)


def deployed_bot(make_runtime: Any, slack: LocalSlack, policies: Path) -> Bot:
    """The bot as deployed, over ``policies``, after ``configure_slack``: its runtime is the handlers' own."""
    runtime = make_runtime(policies=policies)
    handlers.reset_runtime(runtime)
    return Bot(runtime, slack, Client(app_module.app))


def create_secret(aws: Any) -> None:
    aws.client("secretsmanager").create_secret(
        Name="safetycatch/slack", SecretString=json.dumps({"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}))
