"""The demo's Slack part: a local Slack the bot posts to, and an approver clicking Approve over real HTTP.

The credentials go into (moto's) Secrets Manager and the bot reads them from there, as deployed. The click is
a ``block_actions`` request signed exactly as Slack signs it, sent to the real ``POST /slack/actions`` route
served by ``safetycatch serve``'s machinery (chalice's local server) on a free port.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chalicelib.policy.settings import shipped_policies
from chalicelib.slack.messages import builder_link
from safetycatch import render
from safetycatch.local.sandbox import SandboxAccount, patched_env
from safetycatch.local.serve import local_routes
from safetycatch.local.slack_local import LocalSlack, Message, block_actions, signed
from safetycatch.local.slack_view import message_panel, mrkdwn

APPROVER, OUTSIDER = "U0DEMOAPPROVER", "U0MALLORY"
CHANNEL, SECRET_ID = "C0SAFETY1", "safetycatch/demo/slack"
console = render.console


@dataclass
class SlackDemo:
    slack: LocalSlack
    signing_secret: str


def _policies_with_approver(tmp: Path) -> Path:
    out = tmp / "policies"
    shutil.copytree(shipped_policies(), out)
    settings = out / "settings.yaml"
    settings.write_text(settings.read_text().replace("approvers: []", f"approvers: [{APPROVER}]"))
    return out


@contextlib.contextmanager
def local_slack_bot(account: SandboxAccount) -> Iterator[SlackDemo]:
    """Start the local Slack, store the bot's credentials in Secrets Manager, point the bot at both."""
    token, signing_secret = f"xoxb-demo-{secrets.token_hex(8)}", secrets.token_hex(16)
    account.client("secretsmanager").create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"bot_token": token, "signing_secret": signing_secret}))
    with tempfile.TemporaryDirectory() as tmp, LocalSlack(token=token) as slack, patched_env(
            SAFETYCATCH_SLACK_SECRET=SECRET_ID, SAFETYCATCH_SLACK_CHANNEL=CHANNEL, SAFETYCATCH_SLACK_API_URL=slack.url,
            SAFETYCATCH_POLICIES=str(_policies_with_approver(Path(tmp))), SAFETYCATCH_WORKER="inline"):
        yield SlackDemo(slack, signing_secret)


def _click(url: str, demo: SlackDemo, message: Message, user: str, approval_id: str,
           secret: str | None = None) -> tuple[int, float]:
    body = block_actions(user, "approve", approval_id, message.channel, message.ts,
                         demo.slack.response_url(message.channel, message.ts), message)
    request = urllib.request.Request(url + "/slack/actions", data=body.encode(), method="POST",
                                     headers=signed(body, secret or demo.signing_secret))
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, (time.monotonic() - started) * 1000


def show_and_approve(demo: SlackDemo) -> None:
    """Render what was posted, then play a forged click, an outsider's click and the approver's click."""
    posted = demo.slack.posted()
    console.print(f"The bot posted {len(posted)} messages to #safetycatch (one per function and event):")
    for message in posted:
        console.print(f"  [dim]{message.ts}[/]  {message.text}")
    asks = [m for m in posted if any(e.get("action_id") == "approve" for b in m.blocks if b["type"] == "actions"
                                     for e in b["elements"])]
    if not asks:
        console.print("nothing awaits approval")
        return
    message = asks[0]
    approval_id = next(e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]
                       if e["action_id"] == "approve")
    console.print(message_panel(message.blocks))
    console.print("[dim]Block Kit Builder preview:[/]")
    console.print(builder_link(message.blocks), style="dim", soft_wrap=True)
    from chalicelib.core.log import logger

    level = logger.log_level
    logger.setLevel("ERROR")  # the refused clicks below log warnings; the demo shows them instead
    with local_routes(port=0, quiet=True) as url:
        console.print(f"\nThe real route, served locally: [bold]POST {url}/slack/actions[/] (worker inline)")
        status, ms = _click(url, demo, message, APPROVER, approval_id, secret="a-forged-signing-secret")
        console.print(
            f"  a forged click (wrong signing secret)          → [bold red]{status}[/] in {ms:.0f} ms, nothing changed"
        )
        status, ms = _click(url, demo, message, OUTSIDER, approval_id)
        console.print(f"  {OUTSIDER} (not an approver) clicks Approve     → {status} in {ms:.0f} ms, "
                      "an ephemeral 'not authorised', nothing changed")
        status, ms = _click(url, demo, message, APPROVER, approval_id)
        console.print(f"  {APPROVER} (an approver) clicks Approve   → [bold green]{status}[/] in {ms:.0f} ms; "
                      "the worker re-reads the function, applies, updates the message")
        deadline = time.monotonic() + 15
        while demo.slack.message(message.channel, message.ts).versions < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    logger.setLevel(level)
    updated = demo.slack.message(message.channel, message.ts)
    console.print(message_panel(updated.blocks, subtitle="[dim]updated by chat.update[/]"))
    for note in demo.slack.ephemerals:
        console.print(f"  [dim]ephemeral to the clicker:[/] {mrkdwn(note['text'])}")
