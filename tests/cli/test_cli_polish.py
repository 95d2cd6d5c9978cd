"""CLI polish (issue 13.3): lint reports every problem at once; tables fit the terminal or degrade to plain lines;
``scan --format html`` writes one self-contained page."""

from __future__ import annotations

import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from rich.console import Console

from safetycatch import render
from safetycatch.html_report import html_page, money
from safetycatch.main import main
from tests.conftest import POLICIES


def test_lint_reports_every_problem_in_every_file_at_once(tmp_path, capsys):
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    (target / "apigw-timeout.yaml").write_text("mode: sometimes\nseverity: urgent\nparams: {buffer_seconds: 40}\n")
    (target / "memory-cpu.yaml").write_text("moed: auto\nparams: {max_memory_mb: 512, target_memory_mb: 256}\n")
    (target / "settings.yaml").write_text("approvers: [alice]\napproval_ttl_hours: 0\n")
    (target / "tmp-storage.yaml").write_text("mode: [notify\n")
    assert main(["lint", str(target)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "safetycatch: tmp-storage.yaml: line 2: invalid YAML: expected ',' or ']', but got '<stream end>'",
        "safetycatch: settings.yaml: approvers: 'alice' is not a valid id",
        "safetycatch: settings.yaml: approval_ttl_hours: expected a number of hours between 0 and 720",
        "safetycatch: apigw-timeout.yaml: mode: expected one of auto, approve, notify, off, got 'sometimes'",
        "safetycatch: apigw-timeout.yaml: severity: expected one of low, medium, high, critical, got 'urgent'",
        "safetycatch: apigw-timeout.yaml: params.buffer_seconds: must be <= 10, got 40",
        "safetycatch: memory-cpu.yaml: moed: unknown key (known: description, exempt, mode, params, severity)",
        "safetycatch: memory-cpu.yaml: params: target_memory_mb > max_memory_mb: the fix raises memory, never lowers "
        "it (got target_memory_mb=256, max_memory_mb=512)",
        "safetycatch: lint: 8 problems in 4 files",
    ]


@pytest.fixture
def terminal(monkeypatch):
    """The CLI's console as a 60-column terminal."""
    buffer = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=buffer, force_terminal=True, width=60, highlight=False))
    return buffer


def test_tables_fit_the_terminal(terminal):
    render.show_table(["name", "meaning"], [["buffer_seconds", "Seconds kept between the function timeout and the "
                                             "integration timeout, which is a long sentence."]], title="params")
    lines = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue()).splitlines()
    assert all(len(line) <= 60 for line in lines) and len(lines) > 4  # folded inside its column, not cut


def test_tables_are_plain_lines_when_not_a_terminal(capsys):
    long_meaning = "Seconds kept between the function timeout and the integration timeout. " * 3
    render.show_table(["name", "meaning"], [["buffer_seconds", long_meaning.strip()], ["x", "y"]], title="params")
    out = capsys.readouterr().out.splitlines()
    assert out == ["params", "name            meaning", f"buffer_seconds  {long_meaning.strip()}",
                   "x               y"]


def findings_of(page: str) -> dict[str, list[str]]:
    """policy -> the function cells of its table, read back from the page."""

    class Reader(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.policy, self.cell, self.row, self.found = "", "", [], {}
            self.in_h2 = self.in_td = False

        def handle_starttag(self, tag, attrs):
            self.in_h2, self.in_td = tag == "h2", tag == "td"
            if tag == "tr":
                self.row = []

        def handle_endtag(self, tag):
            if tag == "tr" and self.row and self.policy:
                self.found.setdefault(self.policy, []).append(self.row[0])
            if tag == "td":
                self.row.append(self.cell)
                self.cell = ""
            self.in_h2 = self.in_td = False

        def handle_data(self, data):
            if self.in_h2 and data.strip():
                self.policy = data.strip()
            if self.in_td:
                self.cell += data

    reader = Reader()
    reader.feed(page)
    return reader.found


def test_scan_html_is_one_self_contained_page(aws, capsys):
    aws.rest_api(aws.function("api", timeout=30), path="api")
    aws.sqs_mapping(aws.function("worker"), "worker-queue")
    aws.function("pdf", memory=128)
    aws.metric_history("pdf", "Duration", 2400, unit="Milliseconds")
    aws.metric_history("pdf", "Invocations", 4000, unit="Count")
    assert main(["scan", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["scan", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>") and page.count("<html") == 1
    assert not re.search(r"<script|<link|src=|@import|url\(", page)  # nothing to fetch: one file
    found = findings_of(page)
    assert found == {"apigw-timeout": ["api"], "batch-partial-failure": ["worker"], "memory-cpu": ["pdf"]}
    assert page.count("<svg") == 1 + len(found)  # the summary chart and one per policy
    (memory,) = [f for f in data["findings"] if f["policy"] == "memory-cpu"]
    saving = memory["estimated_monthly_saving_usd"]
    # CPU-bound work at 8x the memory runs ~8x shorter: about the same GB-seconds, so about no saving (honestly)
    assert isinstance(saving, float) and abs(saving) < 1
    assert f"est. saving/month (memory-cpu)<b>{money(saving)}</b>" in page
    assert "est. saving/month (provisioned-idle)<b>$0.00</b>" in page


def test_html_escapes_what_it_shows():
    finding = {"policy": "env-secrets", "function": "arn:aws:lambda:us-east-1:123456789012:function:f",
               "severity": "high", "outcome": "reported", "message": "<img src=x onerror=alert(1)>", "fix": None}
    page = html_page({"scan_id": "s", "scopes": [], "functions_scanned": 1, "findings": [finding],
                      "errors": ["<b>boom</b>"]}, act=False, mode="enforce")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;boom" in page
