"""Deterministic AWS call budgets (counted with botocore hooks): a sweep reads in bulk, an event stays cheap."""

from __future__ import annotations

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call

SCAN_BUDGET_PER_FUNCTION = 1.5
EVENT_READ_BUDGET = 4


def build_estate(aws, n: int = 40) -> None:
    orders_api = aws.function("api-0", timeout=30)
    aws.rest_api(orders_api, path="orders")
    aws.http_api(aws.function("api-1", timeout=30), route="GET /items")
    for i in range(2, n):
        tags = {"critical": "true"} if i % 10 == 0 else {}
        arn = aws.function(f"fn-{i}", timeout=10, tags=tags)
        if i % 7 == 0:
            aws.sqs_mapping(arn, f"queue-{i}")


def test_scan_reads_in_bulk(aws, runtime, calls):
    build_estate(aws, 40)
    runtime.bot_account()
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False)
    assert report.functions_scanned == 40 and not report.errors
    assert {d.finding.policy for d in report.decisions} == {"apigw-timeout", "batch-partial-failure",
                                                            "reserved-concurrency"}
    per_function = len(calls.calls) / 40
    assert per_function <= SCAN_BUDGET_PER_FUNCTION, calls.calls
    # bulk reads: one listing of the mappings and one metrics query serve all 40 functions
    assert calls.calls.count("lambda.ListEventSourceMappings") <= 1
    assert calls.calls.count("cloudwatch.GetMetricData") <= 1
    # per function only for the 3 critical ones; GetFunction (100 requests/s) rather than GetFunctionConcurrency
    assert calls.calls.count("lambda.GetFunction") <= 3 and "lambda.GetFunctionConcurrency" not in calls.calls
    assert calls.writes == []


def test_one_config_change_event_is_cheap(aws, runtime, calls):
    arn = aws.function("example-fn", timeout=25)
    aws.rest_api(arn, path="orders")
    aws.function("unrelated", timeout=30)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "example-fn", "timeout": 20,
                                                               "environment": {}})
    calls.clear()
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and report["findings"] == []
    assert len(calls.calls) <= EVENT_READ_BUDGET, calls.calls
    # only the checks a timeout change concerns run (apigw-timeout; env-secrets reads nothing more): the function
    # and the API in front of it are read, nothing about mappings, metrics, logs, roles or the network
    assert {call.split(".")[0] for call in calls.calls} <= {"lambda", "apigateway"}, calls.calls
    assert "lambda.ListEventSourceMappings" not in calls.calls


def test_a_tag_change_re_evaluates_everything_within_a_bounded_budget(aws, runtime, calls):
    arn = aws.function("example-fn", timeout=25)
    aws.rest_api(arn, path="orders")
    calls.clear()
    report = handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"team": "web"}}),
                          runtime=runtime)
    assert report["skipped"] is None
    assert len(calls.calls) <= 11, calls.calls  # 11: GetRestApi names the API as a scan does (issue 25)
