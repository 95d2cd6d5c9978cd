"""A silent pipe is an incident: the last CloudTrail event that reached the bot, per scope (account and region), and
an alarm when none has come for a while although the account changed meanwhile.

The bot's value rests on CloudTrail → EventBridge → rule → handler (and, in members, the forwarding rules). Any of
them can stop without a sound: a trail stopped, a rule disabled, a forwarding role deleted. Every CloudTrail event
the handler receives records its scope's heartbeat (at most one state-table write a minute per scope); the sweep,
which lists every function anyway, compares: a function modified after the last event (plus CloudTrail's delivery
delay) and no event for ``heartbeat_silence_hours`` means changes happen that the bot does not hear. It says so once
per silence (Slack when configured, else an error log line): "no events from <account>/<region> since <time>: check
the trail / rule". ``safetycatch doctor`` prints the last event per scope.

Example:
    >>> s = silence({"seen": 0}, [("orders-api", 7200.0)], now=30000.0, silence_seconds=21600, scope=("1", "r"))
    >>> s.text().split(":")[0]
    'no events from 1/r since 1970-01-01T00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chalicelib.core.log import logger
from chalicelib.core.model import FunctionSnapshot

PK = "heartbeat"
RESOLUTION_SECONDS = 60  # a scope's heartbeat is written at most once a minute
DELIVERY_GRACE_SECONDS = 15 * 60  # CloudTrail delivers to EventBridge within minutes; a change this recent is not due


@dataclass(frozen=True)
class Silence:
    """No event from ``scope`` since ``since`` (epoch seconds) while ``changed`` functions were modified."""

    scope: tuple[str, str]
    since: float
    changed: tuple[str, ...]
    baseline: bool = False  # no event ever: ``since`` is when the bot started watching the scope

    def text(self) -> str:
        """The one-line alarm (Slack and log)."""
        account, region = self.scope
        when = iso(self.since) + (" (when the bot started watching; no event ever)" if self.baseline else "")
        shown = ", ".join(self.changed[:5]) + (f" and {len(self.changed) - 5} more" if len(self.changed) > 5 else "")
        return (f"no events from {account}/{region} since {when}: check the trail / rule "
                f"(CloudTrail logging, the EventBridge rules, the member forwarding rules and role). "
                f"{len(self.changed)} function(s) changed since then without the bot hearing of it: {shown}.")


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def modified_at(snapshot_or_text: Any) -> float | None:
    """Lambda's ``LastModified`` (``2025-06-10T14:02:37.412+0000``) as epoch seconds; None when unreadable."""
    text = getattr(snapshot_or_text, "last_modified", snapshot_or_text)
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("+0000", "+00:00").replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def record(table: Any, account: str, region: str, event_name: str, now: float) -> bool:
    """Note that a CloudTrail event of ``account``/``region`` reached the bot; True when written (once a minute)."""
    item = table.get(PK, f"{account}#{region}")
    if item is not None and now - float(item.get("seen") or 0) < RESOLUTION_SECONDS:
        return False
    table.put({"pk": PK, "sk": f"{account}#{region}", "account": account, "region": region, "seen": int(now),
               "event_name": event_name[:128], "alarmed_for": int((item or {}).get("alarmed_for") or 0)})
    return True


def last_events(table: Any) -> list[dict[str, Any]]:
    """Every scope's heartbeat: ``account``, ``region``, ``seen`` (epoch), ``event_name`` ('' for a baseline)."""
    return sorted(table.query_pk(PK), key=lambda item: str(item.get("sk")))


def silence(item: dict[str, Any], changes: list[tuple[str, float]], now: float, silence_seconds: float,
            scope: tuple[str, str]) -> Silence | None:
    """The pure decision: silent for ``silence_seconds`` while functions changed after the last event (and after
    CloudTrail's delivery delay), else None."""
    seen = float(item.get("seen") or 0)
    if now - seen < silence_seconds:
        return None
    changed = sorted(name for name, at in changes if at > seen + DELIVERY_GRACE_SECONDS and at < now)
    return Silence(scope, seen, tuple(changed), baseline=not item.get("event_name")) if changed else None


class Changes:
    """What the sweep saw: each function's last modification (pass ``observe`` as the sweep's ``select``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def observe(self, snapshot: FunctionSnapshot) -> bool:
        at = modified_at(snapshot)
        if at is not None:
            self.seen.append((snapshot.name, at))
        return True


def check(table: Any, scope: tuple[str, str], changes: list[tuple[str, float]], now: float,
          silence_hours: float, post: Any = None) -> Silence | None:
    """After a sweep of ``scope``: alarm (``post(text)``, else an error log line) once per silence. The first sweep
    of a scope that has never had an event starts its watch (the baseline)."""
    key = f"{scope[0]}#{scope[1]}"
    item = table.get(PK, key)
    if item is None:
        table.put({"pk": PK, "sk": key, "account": scope[0], "region": scope[1], "seen": int(now),
                   "event_name": "", "alarmed_for": 0})
        return None
    found = silence(item, changes, now, silence_hours * 3600, scope)
    if found is None or int(item.get("alarmed_for") or 0) == int(float(item.get("seen") or 0)):
        return None  # not silent, or already said for this silence
    logger.error("event pipe silent", extra={"account": scope[0], "region": scope[1], "since": iso(found.since),
                                             "changed": list(found.changed[:20])})
    if post is not None:
        post(found.text())
    table.put({**item, "alarmed_for": int(float(item.get("seen") or 0))})
    return found


def sweep_listening(runtime: Any, engine: Any) -> dict[str, Any]:
    """``engine.sweep(act=True)`` as the schedule runs it, noting each function's last modification, then the
    scope's heartbeat check (posted to Slack when configured). Returns the sweep's JSON report.

    Example:
        report = sweep_listening(runtime, runtime.engine(account, region))
    """
    changes = Changes()
    report: dict[str, Any] = engine.sweep(act=True, select=changes.observe).to_json()
    scope = (engine.inventory.account, engine.inventory.region)
    try:
        found = check(runtime.store.table, scope, changes.seen, runtime.store.clock(),
                      runtime.settings.heartbeat_silence_hours, lambda text: _post(runtime, text))
    except Exception as exc:  # noqa: BLE001 - the sweep is done; a heartbeat failure is logged, never raised
        logger.warning("heartbeat check failed", extra={"account": scope[0], "region": scope[1], "error": str(exc)})
        return report
    if found is not None:
        report["heartbeat"] = found.text()
    return report


def _post(runtime: Any, text: str) -> None:
    if runtime.slack is None or not runtime.slack.channel:
        return
    from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

    try:
        block = SectionBlock(text=MarkdownTextObject(text=f":rotating_light: {text}"))
        runtime.slack.post(runtime.slack.channel, text, [block])
    except Exception as exc:  # noqa: BLE001 - logged above as an error already; a lost post must not fail the sweep
        logger.warning("heartbeat alarm not posted", extra={"error": str(exc)})
