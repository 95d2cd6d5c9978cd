"""The event path end to end on moto: a CloudTrail change → re-read → decide → fix / ask / skip."""

from __future__ import annotations

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call


def _orders_api(aws, timeout=30, tags=None):
    arn = aws.function("example-fn", timeout=timeout, tags=tags)
    aws.rest_api(arn, path="orders")
    return arn


def test_timeout_over_rest_integration_is_fixed_to_25s(aws, runtime, event):
    _orders_api(aws, timeout=30)
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    assert report["skipped"] is None
    (finding,) = report["findings"]
    assert (finding["policy"], finding["outcome"], finding["fix"]["params"]) == (
        "apigw-timeout",
        "fixed",
        {"Timeout": 25},
    )
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25
    fix = runtime.store.get_fix(finding["fix_id"])
    assert fix["status"] == "applied" and fix["spec"]["prior"] == {"Timeout": 30}


def test_dry_run_decides_but_makes_zero_writes(aws, make_runtime, calls, event):
    _orders_api(aws, timeout=30, tags={"critical": "true"})
    aws.sqs_mapping(aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["FunctionArn"],
                    "orders-queue")
    runtime = make_runtime(mode="dry-run", table="state-table-that-must-not-be-touched")
    report = handle_event(event("lambda-TagResource20170331v2"), runtime=runtime)  # concerns every policy
    assert {f["outcome"] for f in report["findings"]} == {"dry-run"}
    assert len(report["findings"]) == 3
    assert calls.calls, "the recorder saw the reads"
    assert calls.writes == []
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_the_same_event_twice_acts_once(aws, runtime, calls, event):
    _orders_api(aws, timeout=30)
    first = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    aws.client("lambda").update_function_configuration(FunctionName="example-fn", Timeout=40)
    calls.clear()
    second = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    assert first["findings"][0]["outcome"] == "fixed"
    assert second["skipped"] == "duplicate event (already handled)" and second["findings"] == []
    assert calls.calls == []
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 40


def test_skips_never_read_or_write(aws, runtime, calls, event):
    _orders_api(aws, timeout=30)
    for name, reason in [
        ("lambda-UpdateFunctionConfiguration20150331v2-AccessDenied", "the call failed (AccessDenied)"),
        ("lambda-PutFunctionConcurrency20171031", "the bot's own change"),
        ("cloudwatch-AlarmStateChange-lambda-invocations", "alarm example-fn-invocations-runaway is not a runaway"),
    ]:
        report = handle_event(event(name), runtime=runtime)
        assert report["skipped"].startswith(reason), (name, report["skipped"])
    assert calls.calls == []


def test_deleted_function_is_skipped(aws, runtime, event):
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    assert report["skipped"] == "the function no longer exists"
    assert report["findings"] == []


def test_mapping_event_named_only_by_uuid_is_resolved(aws, runtime):
    arn = aws.function("orders-worker")
    uuid = aws.sqs_mapping(arn, "orders-queue", batch_size=10)
    report = handle_event(api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": 10}),
                          runtime=runtime)
    (finding,) = report["findings"]
    assert finding["policy"] == "batch-partial-failure" and finding["outcome"] == "pending-approval"
    (approval,) = runtime.store.approvals("PENDING")
    assert approval["id"] == finding["approval_id"] and approval["spec"]["target"] == uuid


def test_exempt_tag_means_nothing_changes(aws, runtime, event):
    _orders_api(aws, timeout=30, tags={"safetycatch:exempt": "true"})
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=runtime)
    assert [f["outcome"] for f in report["findings"]] == ["exempt"]
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_mode_off_skips_everything(aws, make_runtime, calls, event):
    _orders_api(aws, timeout=30)
    report = handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"), runtime=make_runtime(mode="off"))
    assert report["skipped"].startswith("safetycatch is off")
    assert calls.calls == []
