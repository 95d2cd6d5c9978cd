"""``safetycatch scan --format html``: one self-contained page (no script, no external asset) for people.

Findings grouped by policy, each group with a small inline SVG bar chart of its severities; a summary chart by
severity; the monthly saving that provisioned-idle and memory-cpu findings estimate; the scopes and the errors.
Every value from AWS (function names, messages) is HTML-escaped.

Example:
    >>> page = html_page({"scan_id": "s1", "scopes": [{"account": "123456789012", "region": "us-east-1"}],
    ...                   "functions_scanned": 1, "findings": [], "errors": []}, act=False, mode="enforce")
    >>> page.startswith("<!DOCTYPE html>") and "0 findings" in page and "<script" not in page
    True
"""

from __future__ import annotations

from collections import Counter, defaultdict
from html import escape
from typing import Any

from chalicelib.core.model import SEVERITIES
from safetycatch.render import plural, short

SAVING_POLICIES = ("provisioned-idle", "memory-cpu")
COLOURS = {"critical": "#b91c1c", "high": "#ea580c", "medium": "#ca8a04", "low": "#0284c7"}
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#111827;padding:0 1rem}h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin:2rem 0 .4rem}
.meta{color:#6b7280}.cards{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}.card{border:1px solid #e5e7eb;
border-radius:8px;padding:.7rem 1rem;min-width:10rem}.card b{display:block;font-size:1.4rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #e5e7eb;vertical-align:top}th{background:#f9fafb}.sev{font-weight:600}
.fix{color:#374151;font-family:ui-monospace,monospace;font-size:12px}.errors li{color:#b91c1c}
"""


def bar_chart(counts: dict[str, int], width: int = 260, bar: int = 14) -> str:
    """A small horizontal bar chart (inline SVG) of ``counts`` per severity, in severity order."""
    rows = [(s, counts.get(s, 0)) for s in reversed(SEVERITIES) if counts.get(s, 0)]
    top = max((n for _, n in rows), default=1)
    height = len(rows) * (bar + 6) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="findings by severity">']
    for i, (severity, n) in enumerate(rows):
        y, length = 2 + i * (bar + 6), max(2, round((width - 120) * n / top))
        parts.append(f'<text x="0" y="{y + bar - 3}" font-size="11">{severity}</text>'
                     f'<rect x="64" y="{y}" width="{length}" height="{bar}" rx="2" fill="{COLOURS[severity]}"/>'
                     f'<text x="{68 + length}" y="{y + bar - 3}" font-size="11">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def monthly_saving(findings: list[dict[str, Any]]) -> dict[str, float]:
    """The estimated monthly saving per policy (provisioned-idle and memory-cpu estimate one).

    Example:
        >>> monthly_saving([{"policy": "memory-cpu", "estimated_monthly_saving_usd": 12.5},
        ...                 {"policy": "provisioned-idle", "estimated_monthly_saving_usd": 40}])
        {'provisioned-idle': 40.0, 'memory-cpu': 12.5}
    """
    totals = {policy: 0.0 for policy in SAVING_POLICIES}
    for f in findings:
        if f["policy"] in totals and isinstance(f.get("estimated_monthly_saving_usd"), (int, float)):
            totals[f["policy"]] += float(f["estimated_monthly_saving_usd"])
    return totals


def money(amount: float) -> str:
    """``money(12.5) == "$12.50"``, ``money(-3) == "-$3.00"`` (a cost, not a saving), never ``$-0.00``."""
    cents = round(amount, 2) + 0.0
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def _fix(f: dict[str, Any]) -> str:
    fix = f.get("fix") or {}
    if not fix:
        return ""
    params = ", ".join(f"{k}={v}" for k, v in (fix.get("params") or {}).items())
    return f'<div class="fix">{escape(fix.get("action", ""))}: {escape(params)}</div>'


def _policy_section(policy: str, findings: list[dict[str, Any]]) -> str:
    counts = Counter(f["severity"] for f in findings)
    rows = "".join(
        f'<tr><td>{escape(short(f["function"]))}</td>'
        f'<td class="sev" style="color:{COLOURS.get(f["severity"], "#111827")}">{escape(f["severity"])}</td>'
        f'<td>{escape(f["outcome"])}</td><td>{escape(f["message"])}{_fix(f)}</td></tr>'
        for f in sorted(findings, key=lambda f: (-SEVERITIES.index(f["severity"]), f["function"])))
    return (f'<section><h2>{escape(policy)} <span class="meta">({plural(len(findings), "finding")})</span></h2>'
            f'{bar_chart(dict(counts))}<table><tr><th>function</th><th>severity</th><th>outcome</th>'
            f'<th>message</th></tr>{rows}</table></section>')


def _header(data: dict[str, Any], act: bool, mode: str) -> str:
    scopes = ", ".join(f"{s['account']} {s['region']}" for s in data.get("scopes") or [])
    findings = data["findings"]
    saving = monthly_saving(findings)
    cards = [("functions scanned", str(data["functions_scanned"])), ("findings", str(len(findings)))]
    cards += [(f"est. saving/month ({policy})", money(amount)) for policy, amount in saving.items()]
    card_html = "".join(f'<div class="card">{escape(label)}<b>{escape(value)}</b></div>' for label, value in cards)
    return (f"<h1>safetycatch scan</h1><p class=\"meta\">{escape(plural(len(findings), 'finding'))} in "
            f"{escape(plural(data['functions_scanned'], 'function'))} · scopes: {escape(scopes or '-')} · "
            f"{'fix' if act else 'report only'}, mode {escape(mode)} · scan {escape(str(data.get('scan_id', '')))}"
            f"</p><div class=\"cards\">{card_html}</div><h2>By severity</h2>"
            f"{bar_chart(dict(Counter(f['severity'] for f in findings)))}")


def html_page(data: dict[str, Any], act: bool, mode: str) -> str:
    """The whole page for a scan report (the JSON contract's dict)."""
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in data["findings"]:
        by_policy[f["policy"]].append(f)
    sections = "".join(_policy_section(p, fs) for p, fs in sorted(
        by_policy.items(), key=lambda item: (-max(SEVERITIES.index(f["severity"]) for f in item[1]), item[0])))
    errors = "".join(f"<li>{escape(e)}</li>" for e in data.get("errors") or [])
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>safetycatch scan</title>"
            f"<style>{STYLE}</style></head><body>{_header(data, act, mode)}{sections}"
            + (f'<h2>Errors</h2><ul class="errors">{errors}</ul>' if errors else "") + "</body></html>")
