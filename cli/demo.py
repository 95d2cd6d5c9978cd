"""``safetycatch demo``: a self-contained tour on an embedded AWS (a moto server), no account needed.

It builds a small account with footguns, scans it, then replays the CloudTrail events a developer's day
produces through the deployed handler's code path (``safetycatch replay``), and shows what was fixed, what
awaits approval and what was ignored, including the bot's own change, a failed call and a duplicate delivery.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.panel import Panel
from rich.table import Table

from cli import render
from cli.cloudtrail import api_call
from cli.sandbox import ACCOUNT, SandboxAccount, moto_server, patched_env
from cli.slack_demo import local_slack_bot, show_and_approve

console = render.console


def _step(number: int, title: str, command: str = "") -> None:
    console.print()
    console.rule(f"[bold cyan]{number}. {title}", align="left")
    if command:
        console.print(f"[dim]$ {command}[/]")


def _run_cli(*argv: str) -> int:
    from cli.main import main

    return main(list(argv))


def _build_account(account: SandboxAccount) -> dict[str, str]:
    arns = {
        "orders-api": account.function("orders-api", timeout=30, memory=512),
        "orders-worker": account.function("orders-worker", timeout=60),
        "payments": account.function("payments", timeout=10, tags={"critical": "true", "team": "billing"}),
        "checkout": account.function("checkout", timeout=10, tags={"team": "web"}),
        "reports": account.function("reports", timeout=20),
        "legacy-batch": account.function("legacy-batch", timeout=120,
                                         tags={"critical": "true", "safetycatch:exempt": "true"}),
        "invoices": account.function("invoices", timeout=30),
    }
    account.rest_api(arns["orders-api"], path="orders", name="orders")
    account.http_api(arns["reports"], route="GET /reports")  # 20 s under a 30 s HTTP API: healthy
    account.sqs_mapping(arns["orders-worker"], "orders-queue", batch_size=10)
    account.concurrency_history("payments", peak=42)
    account.concurrency_history("checkout", peak=12)
    return arns


def _developer_day(account: SandboxAccount, arns: dict[str, str]) -> list[dict[str, Any]]:
    """Make the changes for real in the embedded AWS and return the CloudTrail events they produce."""
    lam = account.client("lambda")
    lam.update_function_configuration(FunctionName="orders-api", Timeout=60)
    raise_timeout = api_call("UpdateFunctionConfiguration20150331v2",
                             {"functionName": arns["orders-api"], "timeout": 60, "environment": {}},
                             {"functionName": "orders-api", "functionArn": arns["orders-api"], "timeout": 60})
    uuid = account.sqs_mapping(arns["invoices"], "invoices-queue", batch_size=25)
    new_mapping = api_call("CreateEventSourceMapping20150331",
                           {"functionName": "invoices", "batchSize": 25,
                            "eventSourceArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:invoices-queue"},
                           {"uUID": uuid, "batchSize": 25, "functionArn": arns["invoices"], "state": "Creating"},
                           session="alice")
    lam.tag_resource(Resource=arns["checkout"], Tags={"critical": "true"})
    tag_critical = api_call("TagResource20170331v2", {"resource": arns["checkout"], "tags": {"critical": "true"}},
                            None, session="bob")
    own_change = api_call("PutFunctionConcurrency20171031",
                          {"functionName": "checkout", "reservedConcurrentExecutions": 18},
                          {"reservedConcurrentExecutions": 18}, role="safetycatch-bot-role", session="safetycatch")
    denied = api_call("UpdateFunctionConfiguration20150331v2", None, None, session="mallory",
                      error_code="AccessDenied")
    mapping_by_uuid = api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": 25},
                               None, session="alice")
    return [raise_timeout, new_mapping, tag_critical, own_change, denied, raise_timeout, mapping_by_uuid]


def _state_table(account: SandboxAccount, names: list[str]) -> Table:
    lam = account.client("lambda")
    table = Table(title="the account afterwards", title_justify="left")
    for column in ("function", "Timeout", "reserved concurrency", "batch failure reporting"):
        table.add_column(column)
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    for name in names:
        config = lam.get_function(FunctionName=name)
        reserved = (config.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        own = [m for m in mappings if m["FunctionArn"].endswith(f":function:{name}")]
        reporting = ", ".join("on" if "ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or [])
                              else "off" for m in own) or "-"
        table.add_row(name, f"{config['Configuration']['Timeout']} s", str(reserved) if reserved is not None else "-",
                      reporting)
    return table


def run_demo() -> int:
    started = time.monotonic()
    console.print(Panel.fit(
        "[bold]safetycatch[/] keeps AWS Lambda functions out of the classic footguns.\n"
        "This tour runs on an embedded AWS (a moto server) and a local Slack - no account, nothing leaves this machine.",
        border_style="cyan"))
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp, \
            patched_env(SAFETYCATCH_TABLE="safetycatch-demo-state", SAFETYCATCH_MODE="enforce"), \
            contextlib.ExitStack() as stack:
        account = SandboxAccount()
        chat = stack.enter_context(local_slack_bot(account))
        _step(1, f"An account with footguns (moto at {endpoint})")
        arns = _build_account(account)
        console.print("orders-api   REST API GET /orders -> function with a 30 s timeout (API Gateway gives up at 29 s)\n"
                      "orders-worker SQS batch of 10, no ReportBatchItemFailures\n"
                      "payments     tagged critical=true, peak 42 concurrent, no reserved concurrency\n"
                      "legacy-batch critical too, but tagged safetycatch:exempt=true\n"
                      "reports, checkout, invoices  healthy (for now)")

        _step(2, "Create the state table", "safetycatch init")
        _run_cli("init")

        _step(3, "Scan the account (report only: nothing changes)", "safetycatch scan")
        _run_cli("scan")

        _step(4, "A developer's day, as CloudTrail sees it",
              "safetycatch replay developer-day.json")
        console.print("alice raises orders-api's timeout to 60 s; alice maps invoices-queue (batch 25) to invoices;\n"
                      "bob tags checkout critical=true; the bot's own PutFunctionConcurrency comes back;\n"
                      "mallory's change is denied; EventBridge delivers alice's first event twice;\n"
                      "alice updates the invoices mapping (the event names it only by uUID).")
        events_file = Path(tmp) / "developer-day.json"
        events_file.write_text(json.dumps(_developer_day(account, arns), indent=1))
        _run_cli("replay", str(events_file))

        _step(5, "Sweep the rest as the bot would", "safetycatch scan --fix")
        _run_cli("scan", "--fix")

        _step(6, "What waits for a human", "safetycatch pending")
        _run_cli("pending")

        _step(7, "Approve on Slack", "an approver clicks Approve (a signed request to POST /slack/actions)")
        show_and_approve(chat)

        _step(8, "The result")
        console.print(_state_table(account, ["orders-api", "orders-worker", "payments", "checkout", "legacy-batch",
                                             "invoices", "reports"]))
        console.print("Every fix stored its prior value first (undo puts it back); approvals expire after 24 h.")
    console.print(f"\n[green]demo finished in {time.monotonic() - started:.1f} s[/] - next: `make test`, "
                  "`safetycatch explain`, README.md for deploying.")
    return 0
