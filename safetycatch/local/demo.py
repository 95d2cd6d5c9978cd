"""``safetycatch demo``: a self-contained tour on an embedded AWS (a moto server), no account needed.

It builds a small account with footguns, scans it, then replays the CloudTrail events a developer's day
produces through the deployed handler's code path (``safetycatch replay``), and shows what was fixed, what
awaits approval and what was ignored, including the bot's own change, a failed call and a duplicate delivery.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.panel import Panel

from safetycatch import render
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.evidence import alarm_state_change, health_event
from safetycatch.local.sandbox import ACCOUNT, SandboxAccount, moto_server, patched_env
from safetycatch.local.slack_demo import local_slack_bot, show_and_approve

console = render.console


class Sections:
    """Numbers the tour's sections in the order they are shown, once each."""

    def __init__(self) -> None:
        self.shown = 0

    def __call__(self, title: str, command: str = "") -> None:
        self.shown += 1
        console.print()
        console.rule(f"[bold cyan]{self.shown}. {title}", align="left")
        if command:
            console.print(f"[dim]$ {command}[/]")


def _run_cli(*argv: str) -> int:
    from safetycatch.main import main

    return main(list(argv))


def _cli_json(*argv: str) -> Any:
    """Run the CLI with JSON output and parse it (the demo shows a summary instead)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _run_cli(*argv)
    return json.loads(buffer.getvalue())


def _outcomes_table(findings: list[dict[str, Any]]) -> None:
    rows = []
    for f in sorted(findings, key=lambda f: (f["outcome"], f["function"])):
        fix = f.get("fix") or {}
        change = ", ".join(f"{k}={v}" for k, v in (fix.get("params") or {}).items()) if fix else ""
        rows.append([render.short(f["function"]), f["policy"],
                     f"[{render.OUTCOME_STYLE.get(f['outcome'], '')}]{f['outcome']}[/]",
                     f"{fix.get('action', '')} {change}".strip() or "-"])
    render.show_table(["function", "policy", "outcome", "change"], rows, boxed=False)


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
    arns.update(_more_footguns(account))
    arns.update(_infrastructure_footguns(account))
    return arns


MORE_FOOTGUNS = (
    "ml-scorer    code + a 52 MB pandas layer: slow cold starts\n"
    "legacy-mailer SMTP password and a Slack token in plain environment variables\n"
    "signup-api   128 MB behind an HTTP API, no provisioned concurrency\n"
    "quotes-api   provisioned concurrency on alias live, 8% used on average\n"
    "pdf-render   128 MB, 2.4 s per invocation: starved of CPU"
)


def _more_footguns(account: SandboxAccount) -> dict[str, str]:
    """Footguns 5, 6, 7, 8 and 10: a big package, secrets in the environment, a cold API, idle provisioned
    concurrency and a CPU-starved function (with the CloudWatch history Lambda would have published)."""
    arns = {
        "ml-scorer": account.function("ml-scorer", memory=1024, Layers=[account.layer("pandas", 52 * 1024 * 1024)]),
        "legacy-mailer": account.function("legacy-mailer", Environment={"Variables": {
            "SMTP_PASSWORD": "demo-only-not-a-real-password",
            "ALERTS": "xoxb-000000000000-0000000000000-DEMOdemoDEMOdemo",
            "DB_SECRET_ARN": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"}}),
        "signup-api": account.function("signup-api", memory=128),
        "quotes-api": account.function("quotes-api", memory=1024),
        "pdf-render": account.function("pdf-render", memory=128),
    }
    account.http_api(arns["signup-api"], route="POST /signup")
    lam = account.client("lambda")
    lam.create_alias(FunctionName="quotes-api", Name="live", FunctionVersion=lam.publish_version(
        FunctionName="quotes-api")["Version"])
    account.metric_history("quotes-api", "ProvisionedConcurrencyUtilization", 0.08, qualifier="live")
    account.metric_history("quotes-api", "ProvisionedConcurrentExecutions", 1, qualifier="live", peak=3, unit="Count")
    account.metric_history("pdf-render", "Duration", 2400, unit="Milliseconds")
    account.metric_history("pdf-render", "Invocations", 40, unit="Count")
    return arns


def _infrastructure_footguns(account: SandboxAccount) -> dict[str, str]:
    """Footguns 1, 4, 11 and 12: a VPC function behind an internet gateway only, a function writing to the
    bucket that triggers it, a REST API answering 200 to unhandled errors, a /tmp that fills up."""
    network = account.vpc("igw", endpoints=("s3",))
    writes_uploads = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                     "Resource": "arn:aws:s3:::demo-uploads-123456789012/*"}]}
    lam = account.client("lambda")
    arns = {
        "geo-lookup": account.function(
            "geo-lookup", VpcConfig={"SubnetIds": network["subnets"], "SecurityGroupIds": []}
        ),
        "uploads-processor": str(
            lam.create_function(
                FunctionName="uploads-processor",
                Runtime="python3.12",
                Handler="app.handler",
                Code={"ZipFile": account._zip},
                Role=account.execution_role("uploads-processor-role", {"write-uploads": writes_uploads}),
            )["FunctionArn"]
        ),
        "legacy-orders": account.function("legacy-orders", timeout=20),
        "thumbnails": account.function("thumbnails", timeout=20),
    }
    account.bucket_trigger("demo-uploads-123456789012", arns["uploads-processor"], prefix="incoming/")
    account.custom_rest_api(arns["legacy-orders"], path="legacy-orders")
    account.log_lines("thumbnails", ["START", "[ERROR] OSError: [Errno 28] No space left on device", "END"])
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


def _state_table(account: SandboxAccount, names: list[str]) -> None:
    lam = account.client("lambda")
    rows = []
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    for name in names:
        config = lam.get_function(FunctionName=name)
        reserved = (config.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        own = [m for m in mappings if m["FunctionArn"].endswith(f":function:{name}")]
        reporting = ", ".join("on" if "ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or [])
                              else "off" for m in own) or "-"
        rows.append([name, f"{config['Configuration']['Timeout']} s", str(reserved) if reserved is not None else "-",
                     reporting])
    render.show_table(["function", "Timeout", "reserved concurrency", "batch failure reporting"], rows,
                      title="the account afterwards")


def _loop_table(account: SandboxAccount, title: str) -> None:
    lam, name = account.client("lambda"), "thumbnailer"
    reserved = lam.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    mappings = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
    alarm = account.client("cloudwatch").describe_alarms(AlarmNames=[f"safetycatch-runaway-{name}"])["MetricAlarms"]
    render.show_table(["function", "reserved concurrency", "SQS mapping", "runaway alarm"],
                      [[name, "-" if reserved is None else str(reserved),
                        ", ".join(m["State"] for m in mappings) or "-", alarm[0]["StateValue"] if alarm else "-"]],
                      title=title)


def _runaway_loop(account: SandboxAccount, tmp: str, section: Sections) -> None:
    """A runaway S3 loop: the managed alarm fires, the real handler kills the function, restore undoes it."""
    section("A runaway loop, killed and restored",
            "safetycatch replay runaway.json --fix; safetycatch restore thumbnailer")
    lam, cloudwatch, name = account.client("lambda"), account.client("cloudwatch"), "thumbnailer"
    arn = account.function(name, timeout=30)
    bucket = f"uploads-{ACCOUNT}"
    account.client("s3").create_bucket(Bucket=bucket)
    account.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    account.sqs_mapping(arn, "thumbnail-jobs", report_failures=True)
    lam.tag_resource(Resource=arn, Tags={"safetycatch:kill-switch": "true"})
    tagged = api_call("TagResource20170331v2", {"resource": arn, "tags": {"safetycatch:kill-switch": "true"}},
                      None, session="carol")
    console.print(f"carol puts {name} (S3 {bucket} + SQS thumbnail-jobs) under the kill-switch; the bot creates "
                  f"its alarm.\nThen {name} writes its thumbnails back into {bucket}: every write invokes it again.")
    (Path(tmp) / "tagged.json").write_text(json.dumps(tagged))
    _run_cli("replay", str(Path(tmp) / "tagged.json"), "--fix")
    _loop_table(account, "before the loop")
    now = time.time()
    cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": name}],
         "Timestamp": now - 60 * minutes_ago, "Value": value, "Unit": "Count"}
        for minutes_ago, value in ((3, 40.0), (2, 9400.0), (1, 48211.0))])
    reason = "Threshold Crossed: 2 out of the last 2 datapoints [9400.0, 48211.0] were >= the threshold (1.0)."
    cloudwatch.set_alarm_state(AlarmName=f"safetycatch-runaway-{name}", StateValue="ALARM", StateReason=reason)
    alarm = cloudwatch.describe_alarms(AlarmNames=[f"safetycatch-runaway-{name}"])["MetricAlarms"][0]
    evidence = [alarm_state_change(alarm, reason=reason, datapoints=[9400.0, 48211.0]), health_event([arn])]
    console.print("Invocations spike 40 -> 9,400 -> 48,211 a minute; the alarm goes to ALARM, and hours later AWS "
                  "Health reports the same loop.")
    (Path(tmp) / "runaway.json").write_text(json.dumps(evidence, indent=1))
    _run_cli("replay", str(Path(tmp) / "runaway.json"), "--fix")
    _loop_table(account, "killed")
    console.print("[dim]$ safetycatch restore thumbnailer[/]  (or the Restore button in Slack)")
    _run_cli("restore", name)
    _loop_table(account, "restored: exactly as before")


KEPT_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_DEFAULT_REGION", "SAFETYCATCH_TABLE", "SAFETYCATCH_POLICIES", "SAFETYCATCH_SLACK_SECRET",
                 "SAFETYCATCH_SLACK_CHANNEL", "SAFETYCATCH_SLACK_API_URL")


def _wait_for_ctrl_c() -> None:
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


def keep_running(endpoint: str, wait: Callable[[], None] = _wait_for_ctrl_c) -> None:
    """``demo --keep``: the demo account stays up; print how to reach it from another shell, then ``wait``."""
    exports = "\n".join(f"export {key}={os.environ[key]}" for key in KEPT_SETTINGS if os.environ.get(key))
    console.print(Panel(
        f"The demo account is still running at [bold]{endpoint}[/] (fake credentials, nothing leaves this "
        f"machine). In another shell:\n\n{exports}\n\n.venv/bin/safetycatch scan\n"
        f".venv/bin/safetycatch history --since 1h\naws --endpoint-url {endpoint} lambda list-functions\n\n"
        "Press Ctrl-C here to stop it.", title="demo --keep", border_style="cyan"), soft_wrap=True)
    print(f"endpoint: {endpoint}", flush=True)
    wait()
    console.print("demo account stopped")


def run_demo(keep: bool = False, wait: Callable[[], None] = _wait_for_ctrl_c) -> int:
    """The tour; with ``keep`` the embedded AWS (and local Slack) stay up until ``wait`` returns (Ctrl-C)."""
    started = time.monotonic()
    console.print(
        Panel.fit(
            "[bold]safetycatch[/] keeps AWS Lambda functions out of the classic footguns.\n"
            "This tour runs on an embedded AWS (a moto server) and a local Slack - "
            "no account, nothing leaves this machine.",
            border_style="cyan",
        )
    )
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp, \
            patched_env(SAFETYCATCH_TABLE="safetycatch-demo-state", SAFETYCATCH_MODE="enforce"), \
            contextlib.ExitStack() as stack:
        account = SandboxAccount()
        chat = stack.enter_context(local_slack_bot(account))
        proved = _selftest(_tour(account, chat, tmp, endpoint))
        console.print(f"\n[green]demo finished in {time.monotonic() - started:.1f} s[/] - next: `make test`, "
                      "`safetycatch explain`, README.md for deploying.")
        if keep:
            keep_running(endpoint, wait)
    return proved


def _selftest(section: Sections) -> int:
    """The tour ends as a deploy does: the bot proves itself end to end (exit 1 if it could not)."""
    section("Prove it end to end", "safetycatch selftest")
    console.print("A throwaway function with Timeout 29 behind a throwaway REST API; the local trail hands the "
                  "change to the bot\nas CloudTrail and EventBridge would (moto records no CloudTrail events); "
                  "the bot fixes it; all of it is deleted.")
    return _run_cli("selftest")


def _tour(account: SandboxAccount, chat: Any, tmp: str, endpoint: str) -> Sections:
    section = Sections()
    section(f"An account with footguns (moto at {endpoint})")
    arns = _build_account(account)
    console.print(
        "orders-api   REST API GET /orders -> function with a 30 s timeout (API Gateway gives up at 29 s)\n"
        "orders-worker SQS batch of 10, no ReportBatchItemFailures\n"
        "payments     tagged critical=true, peak 42 concurrent, no reserved concurrency\n"
        "legacy-batch critical too, but tagged safetycatch:exempt=true\n"
        "geo-lookup   in a VPC whose only default route is an internet gateway (no egress for Lambda)\n"
        "uploads-processor  writes to the bucket prefix that triggers it (a recursive loop)\n"
        "legacy-orders  REST API non-proxy integration: unhandled errors answer 200\n"
        "thumbnails   'No space left on device' in its logs (/tmp fills up)\n"
        "reports, checkout, invoices  healthy (for now)"
    )
    console.print(MORE_FOOTGUNS)

    section("Create the state table", "safetycatch init")
    _run_cli("init")

    section("Scan the account (report only: nothing changes)", "safetycatch scan")
    _run_cli("scan")

    section("A developer's day, as CloudTrail sees it", "safetycatch replay developer-day.json --fix")
    console.print("alice raises orders-api's timeout to 60 s; alice maps invoices-queue (batch 25) to invoices;\n"
                  "bob tags checkout critical=true; the bot's own PutFunctionConcurrency comes back;\n"
                  "mallory's change is denied; EventBridge delivers alice's first event twice;\n"
                  "alice updates the invoices mapping (the event names it only by uUID).")
    events_file = Path(tmp) / "developer-day.json"
    events_file.write_text(json.dumps(_developer_day(account, arns), indent=1))
    _run_cli("replay", str(events_file), "--fix")

    section("Sweep the rest as the bot would (the messages are those of section 3)",
            "safetycatch scan --fix --format json")
    _outcomes_table(_cli_json("scan", "--fix", "--format", "json")["findings"])

    section("What waits for a human", "safetycatch pending")
    _run_cli("pending")

    section("Approve on Slack", "an approver clicks Approve (a signed request to POST /slack/actions)")
    show_and_approve(chat)

    section("The result")
    _state_table(account, ["orders-api", "orders-worker", "payments", "checkout", "legacy-batch", "invoices",
                           "reports"])
    console.print("Every fix stored its prior value first (`safetycatch undo FIX_ID` puts it back; "
                  "`safetycatch history` shows the audit trail); approvals expire after 24 h.")

    _runaway_loop(account, tmp, section)
    return section
