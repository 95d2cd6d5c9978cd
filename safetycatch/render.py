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


def adapt_to_output() -> None:
    """On a terminal, text wraps to its width; piped or redirected, lines are never wrapped or cut."""
    console.soft_wrap = not console.is_terminal
    errors.soft_wrap = not errors.is_terminal


def plural(count: int, word: str, many: str = "") -> str:
    """``plural(1, "finding") == "1 finding"``, ``plural(2, "finding") == "2 findings"``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def show_table(columns: list[str], rows: list[list[str]], title: str = "", boxed: bool = True) -> None:
    """A table that fits the terminal; when stdout is not a terminal, plain aligned lines that are never cut."""
    if console.is_terminal:
        table = Table(box=box.SIMPLE if boxed else None, title=title or None, title_justify="left",
                      header_style="bold", pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    plain = [[Text.from_markup(cell).plain for cell in row] for row in [columns, *rows]]
    widths = [max(len(row[i]) for row in plain) for i in range(len(columns))]
    if title:
        console.print(Text(title), soft_wrap=True)
    for row in plain:
        console.print(Text("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()),
                      soft_wrap=True)

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
    fix_id = (f.get("fix") or {}).get("id") or f.get("fix_id")
    if fix_id and f["outcome"] == "fixed":  # how to take it back, where the operator is looking
        text.append(f"\n{indent}  undo: safetycatch undo {fix_id}")
    return text


def scan_table(data: dict[str, Any], act: bool, mode: str) -> None:
    findings = data["findings"]
    how = "fix" if act else "report only"
    scopes = data.get("scopes") or []
    where = (f"{len(scopes)} scopes" if len(scopes) > 1 else
             f"account {scopes[0]['account']} {scopes[0]['region']}" if scopes else
             f"account {data['account']} {data['region']}")
    console.print(f"[bold]safetycatch scan[/] {where}: {plural(data['functions_scanned'], 'function')}, "
                  f"{plural(len(findings), 'finding')} ({how}, mode {mode})")
    for scope in scopes if len(scopes) > 1 else []:
        console.print(f"  {scope['account']} {scope['region']}: {plural(scope['functions_scanned'], 'function')}, "
                      f"{plural(scope['findings'], 'finding')}"
                      + (f", {plural(scope['errors'], 'error')}" if scope["errors"] else ""))
    for f in sorted(findings, key=lambda f: (f.get("account", ""), f.get("region", ""), f["function"], f["policy"])):
        console.print(finding_lines(f))
    for error in data["errors"]:
        errors.print(f"[red]error:[/] {escape(error)}")


def replay_table(reports: list[dict[str, Any]], mode: str, command: str = "replay") -> None:
    console.print(f"[bold]safetycatch {command}[/]: {plural(len(reports), 'event')} (mode {mode})")
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
    console.print(f"[bold]{plural(len(approvals), 'pending approval')}[/] (safetycatch approve ID / deny ID)")
    for a in approvals:
        console.print(Text.assemble("  ", (a["id"], "bold"), f"  {short(a['function'])}  {a['policy']}  ",
                                    (a["status"], "magenta"), f"  expires {a['expires_at']}"))
        if a.get("change"):
            console.print(Text(f"    proposed: {a['change']}", "dim"))


def history_table(records: list[dict[str, Any]], since: str) -> None:
    if not records:
        console.print(f"no audit records since {since}")
        return
    console.print(f"[bold]{plural(len(records), 'audit record')}[/] since {since}, newest first")
    rows = [[str(r["at"])[:19].replace("T", " "), short(r["function"]), r.get("policy") or "-",
             r.get("outcome") or "-", " ".join(f"{k}={r[k]}" for k in ("fix_id", "approval_id") if r.get(k)),
             r.get("context") or ""] for r in records]
    # every cell is data (a role path may hold brackets): escaped, never read as markup
    show_table(["at", "function", "policy", "outcome", "ids", "context"],
               [[escape(str(cell)) for cell in row] for row in rows], boxed=False)


def explain_list(policies: list[dict[str, Any]]) -> None:
    console.print(f"[bold]safetycatch policies[/] ({len(policies)})")
    width = max(len(p["id"]) for p in policies)
    for p in policies:
        console.print(Text.assemble("  ", (p["id"].ljust(width), "bold"),
                                    f"  footgun {p['footgun']:>2}  {p['default_mode']:<7} "
                                    f"{p['default_severity']:<8} {p['title']}"))
    console.print("safetycatch explain POLICY_ID for params, fixes and permissions")


def explain_policy(p: dict[str, Any]) -> None:
    """One check for people (``safetycatch.explain.describe`` is the data)."""
    console.print(f"[bold]{p['id']}[/] (footgun {p['footgun']}) - {escape(p['title'])}")
    console.print(f"default mode [bold]{p['default_mode']}[/], severity [bold]{p['default_severity']}[/]\n")
    for paragraph in p["doc"]:
        console.print(escape(paragraph) + "\n")
    if p["params"]:
        show_table(["name", "type", "default", "bounds", "meaning"],
                   [[q["name"], q["type"], escape(repr(q["default"])), q["bounds"], escape(q["doc"])]
                    for q in p["params"]], title="params")
    for rule in p["rules"]:
        console.print(f"rule: {escape(rule)}")
    for fix in p["fixes"]:
        console.print(f"fix [bold]{fix['action']}[/]: {escape(fix['doc'])} (needs {', '.join(fix['permissions'])})")
    if p["triggers"]:
        console.print(f"re-evaluated on: {', '.join(p['triggers'])}; CreateFunction, tag changes "
                      "and the periodic sweep re-evaluate every policy")
    console.print(f"reads: {', '.join(p['reads'])}")


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


DOCTOR_STATUS = {"ok": ("ok", "green"), "missing": ("MISSING", "bold red"), "cannot-check": ("cannot check here",
                                                                                             "yellow")}


def doctor_table(checks: list[dict[str, Any]]) -> None:
    """``safetycatch doctor``: one line per item; a missing one says how to fix it."""
    for check in checks:
        label, style = DOCTOR_STATUS.get(check["status"], (check["status"], "white"))
        line = Text.assemble((f"{label:<18}", style), (f"{check['id']:<28}", "bold"), escape(check["detail"]))
        if check.get("fix"):
            line.append(f"  → fix: {check['fix']}", style="cyan")
        console.print(line, soft_wrap=True)  # one line per item, however long
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in DOCTOR_STATUS}
    console.print(f"{counts['ok']} ok, {counts['missing']} missing, {counts['cannot-check']} cannot be checked here")
