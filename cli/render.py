"""Human output for the CLI (rich tables on stdout, progress on stderr). JSON output does not come here.

Example:
    scan_table({"account": "123456789012", "region": "us-east-1", "functions_scanned": 0,
                "findings": [], "errors": []}, act=False, mode="enforce")
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

console = Console(highlight=False, soft_wrap=False)
errors = Console(stderr=True, highlight=False)

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}
OUTCOME_STYLE = {"fixed": "bold green", "pending-approval": "bold magenta", "notified": "blue",
                 "reported": "white", "dry-run": "italic yellow", "exempt": "dim", "failed": "bold red"}


def iso(epoch: Any) -> str:
    """Epoch seconds as ISO-8601 UTC (``expires_at`` in ``pending``)."""
    try:
        return datetime.fromtimestamp(int(epoch), timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError):
        return str(epoch)


def short(arn: str | None) -> str:
    """The function name of an ARN (tables are for people)."""
    return (arn or "-").rsplit(":function:", 1)[-1]


def _fix_text(fix: dict[str, Any] | None) -> str:
    if not fix:
        return ""
    params = ", ".join(f"{k}={v}" for k, v in fix["params"].items())
    prior = ", ".join(f"{k}={v}" for k, v in (fix.get("prior") or {}).items())
    return f"{fix['action']}: {prior or '-'} -> {params}" if prior else f"{fix['action']}: {params}"


def finding_lines(f: dict[str, Any], indent: str = "  ") -> Text:
    """One finding as a few readable lines: who/what/how bad/what happened, then the advice and the fix."""
    text = Text(indent)
    text.append(short(f["function"]), "bold")
    text.append("  ")
    text.append(f["policy"])
    text.append("  ")
    text.append(f["severity"], SEVERITY_STYLE.get(f["severity"], ""))
    text.append("  ")
    text.append(f["outcome"], OUTCOME_STYLE.get(f["outcome"], ""))
    text.append(f"\n{indent}  {f['message']}")
    fix = _fix_text(f.get("fix"))
    if fix:
        text.append(f"\n{indent}  {fix}", "dim")
    if f.get("detail"):
        text.append(f"\n{indent}  {f['detail']}", "italic")
    return text


def scan_table(data: dict[str, Any], act: bool, mode: str) -> None:
    findings = data["findings"]
    how = "fix" if act else "report only"
    scopes = data.get("scopes") or []
    where = f"{len(scopes)} scopes" if len(scopes) > 1 else f"account {data['account']} {data['region']}"
    console.print(f"[bold]safetycatch scan[/] {where}: "
                  f"{data['functions_scanned']} functions, {len(findings)} findings ({how}, mode {mode})")
    for scope in scopes if len(scopes) > 1 else []:
        console.print(f"  {scope['account']} {scope['region']}: {scope['functions_scanned']} functions, "
                      f"{scope['findings']} findings" + (f", {scope['errors']} errors" if scope["errors"] else ""))
    for f in sorted(findings, key=lambda f: (f.get("account", ""), f.get("region", ""), f["function"], f["policy"])):
        console.print(finding_lines(f))
    for error in data["errors"]:
        errors.print(f"[red]error:[/] {escape(error)}")


def replay_table(reports: list[dict[str, Any]], mode: str, command: str = "replay") -> None:
    console.print(f"[bold]safetycatch {command}[/]: {len(reports)} events (mode {mode})")
    for r in reports:
        head = Text("  ")
        head.append(r.get("event_name") or "-", "bold")
        if r.get("function"):
            head.append(f"  {short(r.get('function'))}")
        if len(r.get("functions") or []) > 1:
            head.append(f" (+{len(r['functions']) - 1} more)")
        if r.get("skipped"):
            head.append(f"  skipped: {r['skipped']}", "dim")
        elif not r.get("findings"):
            head.append("  no findings", "green")
        console.print(head)
        for f in r.get("findings", []):
            console.print(finding_lines(f, indent="    "))
        for error in r.get("errors", []):
            console.print(Text(f"    error: {error}", "red"))


def pending_table(approvals: list[dict[str, Any]]) -> None:
    if not approvals:
        console.print("no approvals pending")
        return
    console.print(f"[bold]{len(approvals)} pending approvals[/] (safetycatch approve ID / deny ID)")
    for a in approvals:
        console.print(Text.assemble("  ", (a["id"], "bold"), f"  {short(a['function'])}  {a['policy']}  ",
                                    (a["status"], "magenta"), f"  expires {a['expires_at']}"))


def explain(policy_id: str | None) -> None:
    from chalicelib.checks import REGISTRY
    from chalicelib.fixes import ACTIONS

    if not policy_id:
        console.print(f"[bold]safetycatch policies[/] ({len(REGISTRY)})")
        width = max(len(c.id) for c in REGISTRY.values())
        for check in REGISTRY.values():
            console.print(Text.assemble("  ", (check.id.ljust(width), "bold"),
                                        f"  footgun {check.footgun:>2}  {check.default_mode:<7} "
                                        f"{check.default_severity:<8} {check.title}"))
        console.print("safetycatch explain POLICY_ID for params, fixes and permissions")
        return
    check = REGISTRY[policy_id]
    console.print(f"[bold]{check.id}[/] (footgun {check.footgun}) - {check.title}")
    console.print(f"default mode [bold]{check.default_mode}[/], severity [bold]{check.default_severity}[/]\n")
    body = check.doc.strip().split("\n", 1)[-1].strip()
    for paragraph in body.split("\n\n"):
        console.print(" ".join(paragraph.split()) + "\n")
    if check.params:
        table = Table(box=box.SIMPLE, title="params", title_justify="left")
        for column in ("name", "type", "default", "meaning"):
            table.add_column(column)
        for p in check.params:
            table.add_row(p.name, p.kind.__name__, repr(p.default), p.doc)
        console.print(table)
    for name in check.fix_actions:
        action = ACTIONS[name]
        console.print(f"fix [bold]{name}[/]: {action.doc} (needs {', '.join(action.permissions)})")
    if check.triggers:
        console.print(f"re-evaluated on: {', '.join(sorted(check.triggers))}; CreateFunction, tag changes "
                      "and the periodic sweep re-evaluate every policy")
    reads = sorted({*check.read_permissions, "lambda:GetFunction"})
    console.print(f"reads: {', '.join(reads)}")


@contextlib.contextmanager
def scan_progress(enabled: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr while a scan runs (only when stderr is a terminal)."""
    if not enabled or not errors.is_terminal:
        yield None
        return
    with Progress(SpinnerColumn(), TextColumn("scanning"), BarColumn(), TextColumn("{task.completed} functions"),
                  TimeElapsedColumn(), console=errors, transient=True) as progress:
        task = progress.add_task("scan", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
