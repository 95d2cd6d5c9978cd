"""Tags fail closed: a function whose tags cannot be read is never written to, and the report says why.

GetFunction returns ``Tags`` only when the caller is also allowed ``lambda:ListTags``; otherwise it answers with
``TagsError`` and no tags (botocore's GetFunction documentation), and every function would read as untagged:
``safetycatch:exempt=true`` ignored, ``critical`` never matched. moto always returns the tags, so the denied
answer is stubbed (botocore Stubber on the real client, that operation only) with the configuration moto holds.
"""

from __future__ import annotations

from chalicelib.bot.handlers import handle_event
from chalicelib.killswitch import kill as killswitch
from safetycatch.local.cloudtrail import api_call

TAGS_ERROR = {"ErrorCode": "AccessDeniedException",
              "Message": "User: arn:aws:sts::123456789012:assumed-role/safetycatch-dev/safetycatch-dev is not "
                         "authorized to perform: lambda:ListTags on resource: "
                         "arn:aws:lambda:us-east-1:123456789012:function:orders-api because no identity-based "
                         "policy allows the lambda:ListTags action"}


def _exempt_api(aws) -> str:
    arn = aws.function("orders-api", timeout=30, tags={"safetycatch:exempt": "true", "critical": "true"})
    aws.rest_api(arn, path="orders")
    return arn


def _deny_tags_on_get_function(aws, runtime, stub_only, times: int = 1):
    """GetFunction as AWS answers a caller without lambda:ListTags: the configuration, TagsError, no Tags."""
    config = aws.client("lambda").get_function(FunctionName="orders-api")
    stubber = stub_only(runtime.clients()("lambda"), "GetFunction")
    for _ in range(times):
        stubber.add_response("get_function", {"Configuration": config["Configuration"], "TagsError": TAGS_ERROR})
    return stubber


def test_an_exempt_function_whose_tags_are_denied_is_not_fixed(aws, runtime, stub_only):
    _exempt_api(aws)
    _deny_tags_on_get_function(aws, runtime, stub_only)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})
    report = handle_event(event, runtime=runtime)
    assert report["findings"] == [], "no decision on a function whose exemption cannot be read"
    (error,) = report["errors"]
    assert error.startswith("orders-api: tags unreadable (AccessDeniedException: User: arn:aws:sts::")
    assert "is not authorized to perform: lambda:ListTags" in error
    assert error.endswith("not evaluated, nothing changed")
    assert aws.client("lambda").get_function(FunctionName="orders-api")["Configuration"]["Timeout"] == 30
    assert runtime.engine("123456789012", "us-east-1").gateway.log == []


def test_a_sweep_that_cannot_read_tags_writes_nothing_and_says_why(aws, runtime, stub_only):
    _exempt_api(aws)
    tagging = stub_only(runtime.clients()("resourcegroupstaggingapi"), "GetResources")
    tagging.add_client_error("get_resources", "AccessDeniedException",
                             "not authorized to perform: tag:GetResources", http_status_code=400)
    engine = runtime.engine("123456789012", "us-east-1")
    report = engine.sweep(act=True)
    assert report.decisions == [] and engine.gateway.log == []
    assert report.functions_scanned == 1
    assert report.errors == ["orders-api: tags unreadable (tag:GetResources: AccessDeniedException: not authorized "
                             "to perform: tag:GetResources): not evaluated, nothing changed"]
    assert aws.client("lambda").get_function(FunctionName="orders-api")["Configuration"]["Timeout"] == 30


def test_the_kill_switch_refuses_a_function_whose_tags_are_denied(aws, make_runtime, stub_only):
    _exempt_api(aws)
    runtime = make_runtime(table="safetycatch-state")
    from safetycatch.provision import init_state_table

    init_state_table(runtime.clients(), "safetycatch-state")
    _deny_tags_on_get_function(aws, runtime, stub_only)
    result = killswitch.kill(runtime, "orders-api", "test", "tester")
    assert result["outcome"] == "exempt"
    assert "its tags cannot be read" in result["detail"] and "lambda:ListTags" in result["detail"]
    assert aws.client("lambda").get_function(FunctionName="orders-api").get("Concurrency") is None


def test_readable_tags_still_decide_as_before(aws, runtime):
    """The control: the same exempt function with its tags readable is exempt (so the errors above are about
    the denial, not about the function)."""
    _exempt_api(aws)
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2",
                                   {"functionName": "orders-api", "timeout": 30}), runtime=runtime)
    assert report["errors"] == [] and [f["outcome"] for f in report["findings"]] == ["exempt"]


def test_the_bots_own_alarm_on_a_function_whose_tags_are_denied_kills_nothing(aws, runtime, stub_only):
    """The kill evidence check (issue 11) meets fail-closed tags: kill-switch scope comes from the tags, so a
    function whose tags cannot be read is in no scope, even on the bot's own alarm over a real loop."""
    from tests.world.runaway_support import alarm_from_metrics

    arn = aws.function("orders-api", tags={"safetycatch:kill-switch": "true"})
    handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"safetycatch:kill-switch": "true"}}),
                 runtime=runtime)  # the bot puts its alarm and records it
    event = alarm_from_metrics(aws, "orders-api")  # a real loop, evaluated by the test world's CloudWatch
    _deny_tags_on_get_function(aws, runtime, stub_only)
    report = handle_event(event, runtime=runtime)
    assert report["findings"] == [] and "tags of orders-api cannot be read" in report["skipped"]
    assert "lambda:ListTags" in report["skipped"]
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="orders-api")
