"""The sweep's AWS call budget with every policy on (≤ 1.5 calls per function), counted deterministically over
an account of 20 functions with each of the five newer footguns present."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call

FUNCTIONS = 20
BUDGET_PER_FUNCTION = 1.5
OLD = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _account(aws, runtime, stub_only):
    """20 functions: API-fronted cold starts, URLs, idle provisioned concurrency, CPU-starved, secrets, layers."""
    layer = aws.layer("shared-deps", 64 * 1024)
    stubber = stub_only(runtime.clients()("lambda"), "ListProvisionedConcurrencyConfigs")
    for i in range(FUNCTIONS):
        name, kind = f"fn-{i:02d}", i % 10
        extra = {"Layers": [layer]} if kind in (0, 5) else {}
        if kind == 1:
            extra["Environment"] = {"Variables": {"DB_PASSWORD": f"literal-password-{i}", "LOG_LEVEL": "INFO"}}
        memory = 128 if kind in (2, 3, 4) else 1024
        arn = aws.function(name, memory=memory, tags={"critical": "true"} if kind == 9 else None, **extra)
        if kind == 2:
            aws.rest_api(arn, path=name)
        elif kind == 3:
            aws.function_url(name)
            aws.metric_history(name, "UrlRequestCount", 5, hours=6, unit="Count")
        elif kind == 4:
            aws.metric_history(name, "Duration", 2500, hours=12, unit="Milliseconds")
            aws.metric_history(name, "Invocations", 20, hours=12, unit="Count")
        elif kind == 6:
            aws.metric_history(name, "ProvisionedConcurrencyUtilization", 0.1, hours=6, qualifier="live")
            aws.metric_history(name, "ProvisionedConcurrentExecutions", 1, hours=6, qualifier="live", unit="Count")
            stubber.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [{
                "FunctionArn": f"{arn}:live", "AllocatedProvisionedConcurrentExecutions": 10,
                "RequestedProvisionedConcurrentExecutions": 10, "Status": "READY", "LastModified": OLD}]},
                {"FunctionName": arn})
        elif kind == 7:
            aws.sqs_mapping(arn, f"queue-{i}")
    return stubber


def test_sweep_with_every_check_stays_within_the_call_budget(aws, runtime, calls, stub_only):
    stubber = _account(aws, runtime, stub_only)
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep()
    stubber.assert_no_pending_responses()
    assert report.functions_scanned == FUNCTIONS and report.errors == []
    policies = Counter(d.finding.policy for d in report.decisions)
    assert policies["env-secrets"] == 2 and policies["memory-cpu"] == 2 and policies["provisioned-idle"] == 2
    assert policies["cold-start-latency"] == 4  # 2 behind REST APIs, 2 behind function URLs with traffic
    per_operation = Counter(calls.calls)
    assert per_operation["lambda.ListProvisionedConcurrencyConfigs"] == 2  # only where CloudWatch shows PC
    # GetMetricData: one call per look-back length (7 and 14 days) + the per-alias provisioned series
    assert per_operation["cloudwatch.ListMetrics"] == 2 and per_operation["cloudwatch.GetMetricData"] <= 3
    assert not any("FunctionUrl" in op for op in per_operation)
    print(f"{len(calls.calls)} calls for {FUNCTIONS} functions: {dict(per_operation)}")
    assert len(calls.calls) / FUNCTIONS <= BUDGET_PER_FUNCTION, per_operation


def test_one_event_reads_a_bounded_handful(aws, runtime, calls):
    arn = aws.function("signup-api", memory=128, Environment={"Variables": {"API_KEY": "plain-text-key-123"}})
    aws.rest_api(arn, path="signup")
    calls.clear()
    # a tag change concerns every policy (the costliest kind of event)
    report = handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"team": "growth"}}),
                          runtime=runtime)
    assert {f["policy"] for f in report["findings"]} >= {"env-secrets", "cold-start-latency"}
    reads = Counter(calls.calls)
    assert reads["lambda.GetFunction"] == 1 and "lambda.GetFunctionUrlConfig" not in reads  # routed: URL unread
    print(f"{len(calls.calls)} calls for one event: {dict(reads)}")
    assert len(calls.calls) <= 13, reads  # 13: GetRestApi names the API as a scan does (issue 25)
