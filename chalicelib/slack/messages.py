"""Slack messages as a view over the state table, and the notifier that posts them.

One message per function and event (``SlackNotifier.notify``) groups that event's findings. The message
record (``StateStore.create_message``) lists what it shows: approvals, fixes and notes. :func:`render` turns
the record plus the *current* state of each approval / fix into Block Kit (slack-sdk models), so after any
decision the worker simply re-renders and ``chat.update``\\ s: who decided, when, and the result.

Buttons carry only an opaque id in ``value`` (``action_id`` says what it is): ``approve`` / ``deny`` an
approval id, ``undo`` / ``restore`` a fix id. What they do is read from the state table, never the request.

Example:
    notifier = SlackNotifier(slack, "C0SAFETY", lambda: store)
    notifier.notify(snapshot, decisions, "UpdateFunctionConfiguration by alice (e1)")
    text, blocks = render(store, store.get_message(message_id))
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from chalicelib.act.fixes import describe_change
from chalicelib.core.log import logger
from chalicelib.core.model import Decision, FunctionRef, FunctionSnapshot
from chalicelib.decide.engine import NOTE_REPEAT_SECONDS
from chalicelib.slack.client import Slack, SlackUnavailable, escape
from chalicelib.store.state import StateStore

if TYPE_CHECKING:  # what decisions.function_status returns; rendered here
    from chalicelib.people.decisions import FunctionStatus

MAX_ITEMS_PER_MESSAGE = 10   # ≤ 4 blocks per item: well under Block Kit's 50 blocks per message
SECTION_LIMIT = 2900

SEVERITY_MARK = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:",
                 "low": ":large_blue_circle:"}
BUTTON_ACTIONS = ("approve", "deny", "undo", "restore")

StoreSource = Callable[[], StateStore]


def why_it_matters(policy: str) -> str:
    """One sentence from the check's own doc (the first of its second paragraph).

    Example:
        >>> why_it_matters("apigw-timeout").startswith("API Gateway answers 504")
        True
    """
    from chalicelib.checks import REGISTRY

    check = REGISTRY.get(policy)
    if check is None:
        return ""
    paragraphs = [" ".join(p.split()) for p in check.doc.strip().split("\n\n")]
    text = paragraphs[1] if len(paragraphs) > 1 else paragraphs[0].split(": ", 1)[-1]
    return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]


def _who(actor: Any) -> str:
    actor = str(actor or "someone")
    return f"<@{actor}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", actor) else f"`{escape(actor[:80])}`"


def _when(iso: Any) -> str:
    try:
        stamp = datetime.fromisoformat(str(iso))
    except ValueError:
        return escape(iso or "")
    fallback = stamp.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(stamp.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def _epoch(epoch: Any) -> str:
    try:
        return _when(datetime.fromtimestamp(int(epoch), timezone.utc).isoformat())
    except (TypeError, ValueError, OverflowError):
        return escape(epoch)


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _button(label: str, action_id: str, value: str, style: str | None = None,
            confirm: ConfirmObject | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=label, emoji=True), action_id=action_id, value=value,
                         style=style, confirm=confirm)


def _finding_blocks(policy: str, severity: str, message: str, spec: dict[str, Any] | None,
                    function_arn: str) -> list[Block]:
    mark = SEVERITY_MARK.get(severity, ":white_circle:")
    why = why_it_matters(policy)
    text = f"{mark} *{escape(policy)}* · {escape(severity or 'info')}\n{escape(message)}" + (
        f"\n_Why it matters:_ {escape(why)}" if why else "")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=_clip(text)))]
    if spec:
        current, proposed = (escape(side) for side in describe_change(spec))
        fields = [MarkdownTextObject(text=_clip(f"*Current*\n```{current}```", 1900)),
                  MarkdownTextObject(text=_clip(f"*Proposed*\n```{proposed}```", 1900))]
        blocks.append(SectionBlock(fields=fields))
        if spec.get("target") and spec["target"] != function_arn:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"on `{escape(spec['target'])}` · "
                                                                         f"fix `{escape(spec.get('action', ''))}`")]))
    return blocks


def _approval_blocks(approval: dict[str, Any], store: StateStore) -> list[Block]:
    status = approval.get("status", "")
    blocks = _finding_blocks(approval.get("policy", ""), approval.get("severity", ""), approval.get("message", ""),
                             approval.get("spec"), approval.get("function", ""))
    who, when = _who(approval.get("decided_by")), _when(approval.get("decided_at"))
    state = {
        "PENDING": f":hourglass_flowing_sand: Waiting for an approver · expires {_epoch(approval.get('expires_at'))}",
        "APPROVED": f":white_check_mark: Approved by {who} {when} · applying…",
        "APPLIED": f":white_check_mark: Approved by {who} {when} · *applied*",
        "FAILED": f":warning: Approved by {who} {when} · not applied: {escape(approval.get('reason', 'failed'))}",
        "DENIED": f":no_entry_sign: Denied by {who} {when} · nothing changed",
        "EXPIRED": f":hourglass: Expired {_epoch(approval.get('expires_at'))} · nothing changed",
    }.get(status, escape(status))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(state))]))
    if status == "PENDING":
        deny_confirm = ConfirmObject(title="Deny this fix?", text="Nothing will change; the finding stays open.",
                                     confirm="Deny", deny="Cancel", style="danger")
        blocks.append(ActionsBlock(block_id=f"approval-{approval['id'][:24]}", elements=[
            _button("Approve", "approve", approval["id"], style="primary"),
            _button("Deny", "deny", approval["id"], style="danger", confirm=deny_confirm)]))
    elif status == "APPLIED" and approval.get("fix_id"):
        fix = store.get_fix(str(approval["fix_id"]))
        if fix:  # "applied" is said above; what follows is the Undo button or what became of the fix
            blocks.extend(b for b in _fix_state_blocks(fix) if fix.get("status") != "applied"
                          or isinstance(b, ActionsBlock))
    return blocks


def _fix_state_blocks(fix: dict[str, Any], automatic: bool = False) -> list[Block]:
    status, spec = fix.get("status", ""), fix.get("spec") or {}
    kill = spec.get("action") == "kill"
    done = ":octagonal_sign: Killed (throttled to zero)" if kill else (
        ":wrench: Fixed automatically" if automatic else ":wrench: Applied")
    state = {
        "stored": ":gear: Applying…",
        "applied": done,
        "failed": f":warning: Fix failed: {escape(fix.get('reason', ''))}",
        "skipped": f":pause_button: Not applied: {escape(fix.get('reason', ''))}",
        "undoing": f":leftwards_arrow_with_hook: {'Restore' if kill else 'Undo'} requested by "
        f"{_who(fix.get('undo_by'))}",
        "undone": f":leftwards_arrow_with_hook: {'Restored' if kill else 'Undone'} by {_who(fix.get('undo_by'))} "
        f"{_when(fix.get('undo_at'))} · prior value is back",
        "undo-failed": f":warning: {'Restore' if kill else 'Undo'} failed: {escape(fix.get('reason', ''))}",
    }.get(status, escape(status))
    blocks: list[Block] = [ContextBlock(elements=[MarkdownTextObject(text=_clip(state))])]
    if status == "applied":
        label, action = ("Restore", "restore") if kill else ("Undo", "undo")
        confirm = ConfirmObject(title=f"{label} this change?", text=_clip(
            "Puts back the value stored before the change: " + escape(describe_change(spec)[0].replace("\n", ", ")),
            290),
            confirm=label, deny="Cancel")
        blocks.append(ActionsBlock(block_id=f"fix-{str(fix['id'])[:24]}", elements=[
            _button(label, action, str(fix["id"]), style="primary" if kill else None, confirm=confirm)]))
    return blocks


def render(store: StateStore, message: dict[str, Any]) -> tuple[str, list[Block]]:
    """(fallback text, Block Kit blocks) of a message record, from the current state of its items."""
    function = str(message.get("function", ""))
    ref = FunctionRef.parse(function, "", "")
    name = ref.name if ref else function
    where = f"account {ref.account} · {ref.region}" if ref else ""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(f"safetycatch · {name}", 150))),
        ContextBlock(elements=[MarkdownTextObject(text=_clip(
            f"`{escape(function)}` · {escape(where)}" + (f" · {escape(message['context'])}" if message.get("context")
                                                         else ""), 1900))]),
    ]
    counts: dict[str, int] = {}
    for item in message.get("items", []):
        blocks.append(DividerBlock())
        kind = item.get("kind")
        if kind == "approval" and (approval := store.get_approval(str(item.get("id")))):
            blocks.extend(_approval_blocks(approval, store))
            counts["approval"] = counts.get("approval", 0) + (approval.get("status") == "PENDING")
        elif kind == "fix" and (fix := store.get_fix(str(item.get("id")))):
            blocks.extend(_finding_blocks(fix.get("policy", ""), item.get("severity", ""), item.get("message", ""),
                                          fix.get("spec"), function))
            blocks.extend(_fix_state_blocks(fix, automatic=True))
            counts["fix"] = counts.get("fix", 0) + 1
        elif kind == "note":
            blocks.extend(_finding_blocks(item.get("policy", ""), item.get("severity", ""), item.get("message", ""),
                                          None, function))
            note = ":information_source: Notify only · nothing changed" if item.get("outcome") == "notified" \
                else f":warning: {escape(item.get('outcome', ''))}: {escape(item.get('detail', ''))}"
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(note))]))
            counts["note"] = counts.get("note", 0) + 1
    parts = [f"{counts[k]} {label}" for k, label in (("approval", "awaiting approval"), ("fix", "fixed"),
                                                       ("note", "to know")) if counts.get(k)]
    return f"safetycatch · {escape(name)}: " + (", ".join(parts) or "updated"), blocks


def refresh(store: StateStore, slack: Slack, message_id: str) -> bool:
    """Re-render a posted message from the state and chat.update it; False if it was never posted."""
    message = store.get_message(message_id) if message_id else None
    if not message or not message.get("ts"):
        return False
    text, blocks = render(store, message)
    slack.update(str(message["channel"]), str(message["ts"]), text, blocks)
    return True


class SlackNotifier:
    """The engine's Notifier on Slack: one message per function and event, buttons for what needs a human.

    A PENDING approval whose message could not be posted (Slack down) keeps no ``ts``; the next event or
    sweep that finds it again posts it then. Nothing is lost and nothing is posted twice.
    """

    def __init__(self, slack: Slack, channel: str, store: StoreSource) -> None:
        self.slack, self.channel, self._store = slack, channel, store

    @property
    def store(self) -> StateStore:
        return self._store()

    def _items(self, snapshot: FunctionSnapshot, decisions: list[Decision]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for d in decisions:
            f = d.finding
            if d.approval_id and d.outcome == "pending-approval":
                approval = self.store.get_approval(d.approval_id)
                if approval and approval.get("status") == "PENDING" and not approval.get("ts"):
                    items.append({"kind": "approval", "id": d.approval_id})
            elif d.fix_id:
                items.append({"kind": "fix", "id": d.fix_id, "severity": f.severity, "message": f.message[:1500]})
            elif d.outcome in ("notified", "failed"):
                key = hashlib.sha256(f"{snapshot.arn}|{f.policy}|{f.message}".encode()).hexdigest()
                if self.store.claim(f"note#{key}", NOTE_REPEAT_SECONDS):
                    items.append({"kind": "note", "policy": f.policy, "severity": f.severity, "claim": f"note#{key}",
                                  "message": f.message[:1500], "outcome": d.outcome, "detail": d.detail[:300]})
        return items

    def notify(self, snapshot: FunctionSnapshot, decisions: list[Decision], context: str) -> str | None:
        """Post what this event decided about one function (nothing for dry-run / exempt / report-only);
        None when delivered, else why not."""
        return self._post(snapshot.arn, self._items(snapshot, decisions), context)

    def notify_kill(self, function_arn: str, fix_id: str, detail: dict[str, Any], context: str) -> str | None:
        """The kill-switch throttled ``function_arn`` to zero: say why, with a Restore button (fix ``fix_id``);
        or, without ``fix_id``, what was not killed and why. None when delivered, else why not."""
        facts = ", ".join(f"{k}: {v}" for k, v in sorted((detail or {}).items())
                          if isinstance(v, (str, int, float)) and not isinstance(v, bool))
        if not fix_id:  # nothing was killed (held back, exempt, refused evidence): say what and why
            return self._post(function_arn, [{"kind": "note", "policy": "runaway-loop", "severity": "critical",
                                              "message": str(detail.get("message", ""))[:1500],
                                              "outcome": str(detail.get("outcome", "")),
                                              "detail": str(detail.get("detail", ""))[:300]}], context)
        fix = self.store.get_fix(fix_id)
        items = [{"kind": "fix", "id": fix_id, "severity": "critical",
                  "message": (fix or {}).get("reason") or f"runaway invocation loop - {facts}"[:1500]}]
        problem = self._post(function_arn, items, f"{context} · {facts}" if facts else context)
        if problem:  # a kill nobody hears about must at least be loud in the log
            logger.warning("kill notification not delivered", extra={"function": function_arn, "error": problem})
        return problem

    def _post(self, function_arn: str, items: list[dict[str, Any]], context: str) -> str | None:
        for start in range(0, len(items), MAX_ITEMS_PER_MESSAGE):
            chunk = items[start:start + MAX_ITEMS_PER_MESSAGE]
            message_id = self.store.create_message(function_arn, chunk, context=context[:500])
            text, blocks = render(self.store, self.store.get_message(message_id) or {})
            try:
                ts = self.slack.post(self.channel, text, blocks)
            except SlackUnavailable as exc:
                logger.info("slack post failed; approvals stay pending and are re-sent",
                            extra={"function": function_arn, "error": str(exc)})
                for item in items[start:]:  # notes not sent are not "already posted today": the next run sends them
                    if item.get("claim"):
                        self.store.release(str(item["claim"]))
                return f"not notified: {exc}"
            self.store.posted_message(message_id, self.channel, ts)
            for item in chunk:
                if item["kind"] in ("approval", "fix"):
                    self.store.link_message(item["kind"], str(item["id"]), message_id, self.channel, ts)
        return None


def builder_link(blocks: list[dict[str, Any]]) -> str:
    """A Block Kit Builder URL that previews ``blocks``."""
    from urllib.parse import quote

    return "https://app.slack.com/block-kit-builder#" + quote(json.dumps({"blocks": blocks}, separators=(",", ":")))


def status_text(status: FunctionStatus) -> str:
    """``/safetycatch status FUNCTION`` as mrkdwn: its configuration, open requests and recent fixes."""
    ref, snapshot = status.ref, status.snapshot
    lines = [f"*{escape(ref.name)}* `{escape(ref.arn)}`"]
    if snapshot is None:
        lines.append("The function does not exist.")
    else:
        reserved = snapshot.reserved_concurrency
        lines.append(f"timeout {snapshot.timeout_s} s · memory {snapshot.memory_mb} MB · reserved concurrency "
                     f"{'none' if reserved is None else reserved}" + (" · *killed* (throttled to zero)"
                                                                       if reserved == 0 else ""))
    pending = status.pending
    lines.append(f"{len(pending)} awaiting approval" + (":" if pending else ""))
    for a in pending[:10]:
        current, proposed = describe_change(a.get("spec") or {})
        lines.append(escape(f"• {a['policy']}: {current} → {proposed} (`{a['id']}`)".replace("\n", ", ")))
    if status.recent_fixes:
        lines.append("recent fixes:")
        lines.extend(escape(f"• {f.get('policy')}: {(f.get('spec') or {}).get('action')} {f.get('status')} "
                            f"{str(f.get('created_at', ''))[:16]}") for f in status.recent_fixes)
    return "\n".join(lines)
