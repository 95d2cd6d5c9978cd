"""Show a Block Kit message readably in the terminal (the demo; dev-only).

Slack mrkdwn becomes rich markup: ``*bold*``, ``_italic_``, ```code```, user mentions, ``<!date^…|fallback>``
and the few emoji codes the bot uses; buttons are drawn as ``[ Approve ]`` in their style's colour.

Example:
    render.console.print(message_panel(blocks, channel="#safetycatch"))
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

EMOJI = {":red_circle:": "🔴", ":large_orange_circle:": "🟠", ":large_yellow_circle:": "🟡",
         ":large_blue_circle:": "🔵", ":white_circle:": "⚪", ":hourglass_flowing_sand:": "⏳", ":hourglass:": "⌛",
         ":white_check_mark:": "✅", ":warning:": "⚠️ ", ":no_entry_sign:": "🚫", ":wrench:": "🔧",
         ":gear:": "⚙️ ", ":leftwards_arrow_with_hook:": "↩️ ", ":octagonal_sign:": "🛑", ":lock:": "🔒",
         ":information_source:": "ℹ️ ", ":pause_button:": "⏸️ "}
BUTTON_STYLE = {"primary": "bold white on green", "danger": "bold white on red", None: "bold black on white"}


def mrkdwn(text: str) -> str:
    """Slack mrkdwn → rich markup (escaped)."""
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    text = re.sub(r"<!subteam\^([A-Z0-9]+)>", r"@\1", text)
    for code, emoji in EMOJI.items():
        text = text.replace(code, emoji)
    text = escape(text)
    text = re.sub(r"```(.*?)```", r"[cyan]\1[/]", text, flags=re.S)
    text = re.sub(r"`([^`]+)`", r"[cyan]\1[/]", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"[bold]\1[/]", text)
    return re.sub(r"(?<![\w])_([^_\n]+)_(?![\w])", r"[italic]\1[/]", text)


def _block(block: dict[str, Any]) -> Any:
    kind = block.get("type")
    if kind == "header":
        return Text(block["text"]["text"], style="bold")
    if kind == "divider":
        return Text("─" * 60, style="dim")
    if kind == "context":
        return Text.from_markup(" ".join(mrkdwn(e.get("text", "")) for e in block.get("elements", [])), style="dim")
    if kind == "section":
        parts: list[Any] = []
        if block.get("text"):
            parts.append(Text.from_markup(mrkdwn(block["text"]["text"])))
        if block.get("fields"):
            grid = Table.grid(padding=(0, 4))
            cells = [Text.from_markup(mrkdwn(f["text"])) for f in block["fields"]]
            for start in range(0, len(cells), 2):
                grid.add_row(*cells[start:start + 2])
            parts.append(grid)
        return Group(*parts)
    if kind == "actions":
        row = Text()
        for element in block.get("elements", []):
            row.append(f" {element['text']['text']} ", style=BUTTON_STYLE.get(element.get("style")))
            row.append("  ")
        return row
    return Text(f"[{kind} block]", style="dim")


def message_panel(blocks: list[dict[str, Any]], channel: str = "#safetycatch", subtitle: str = "") -> Panel:
    """A Slack message as a rich panel."""
    return Panel(Group(*(_block(b) for b in blocks)), title=f"[bold]{escape(channel)}[/] · safetycatch [dim](bot)[/]",
                 title_align="left", subtitle=subtitle, subtitle_align="right", border_style="magenta", width=100)
