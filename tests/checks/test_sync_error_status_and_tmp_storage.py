"""sync-error-status (REST non-proxy integration responses) and tmp-storage (ENOSPC in logs) on moto."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call


def _scan(runtime, policy):
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False).to_json()
    assert report["errors"] == []
    return {f["function"].rsplit(":", 1)[-1]: f for f in report["findings"] if f["policy"] == policy}


# -- sync-error-status -----------------------------------------------------------------------------

@pytest.mark.parametrize("responses, flagged, text", [
    ((("200", ""),), True, "no integration response maps Lambda errors to an error status"),
    ((("200", ""), ("500", ".+")), False, ""),
    ((("200", ""), ("500", "(.|\\n)*")), False, ""),
    # only errors tagged [BadRequest] become 400: an unhandled ZeroDivisionError still answers 200
    ((("200", ""), ("400", "\\[BadRequest\\].*")), True, "errors matching '\\\\[BadRequest\\\\].*' become 400, but"),
    # a pattern that catches everything but maps to a 2xx does not help
    ((("200", ""), ("202", ".*")), True, "reaches clients as 202"),
    # no default response: API Gateway answers 500 to everything - another problem, not this footgun
    ((("500", ".+"),), False, ""),
    # an invalid regex catches nothing
    ((("200", ""), ("500", "(unclosed")), True, "reaches clients as 200"),
])
def test_integration_responses(aws, runtime, responses, flagged, text):
    arn = aws.function("example-fn")
    aws.custom_rest_api(arn, responses=responses)
    found = _scan(runtime, "sync-error-status")
    assert ("example-fn" in found) is flagged
    if flagged:
        message = found["example-fn"]["message"]
        assert text in message and "POST /orders" in message
        assert "selectionPattern '.+' mapped to 500, or switch to AWS_PROXY" in message


def test_proxy_integrations_are_not_flagged(aws, runtime):
    arn = aws.function("example-fn")
    aws.rest_api(arn, path="orders")  # AWS_PROXY
    aws.http_api(arn, route="GET /reports")
    assert _scan(runtime, "sync-error-status") == {}


def test_event_path_reads_the_integration_responses(aws, runtime):
    arn = aws.function("example-fn", timeout=10)
    api_id = aws.custom_rest_api(arn, responses=(("200", ""),))
    event = api_call(
        "PutIntegration",
        {
            "restApiId": api_id,
            "resourceId": "abc123",
            "httpMethod": "POST",
            "putIntegrationInput": {
                "type": "AWS",
                "uri": f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations",
            },
        },
        service="apigateway",
    )
    report = handle_event(event, runtime=runtime)
    assert [f["policy"] for f in report["findings"]] == ["sync-error-status"]
    assert report["findings"][0]["outcome"] == "reported" and report["findings"][0]["fix"] is None


# -- tmp-storage -----------------------------------------------------------------------------------

ENOSPC_LINE = "[ERROR] OSError: [Errno 28] No space left on device: '/tmp/work/frame-0042.png' token=hunter2"


def test_sweep_finds_enospc_through_logs_insights(aws, runtime, calls):
    for name in ("thumbnails", "resizer", "quiet", "never-ran"):
        aws.function(name, EphemeralStorage={"Size": 1024} if name == "resizer" else {"Size": 512})
    aws.log_lines("thumbnails", ["START", ENOSPC_LINE, ENOSPC_LINE, "END"])
    aws.log_lines("resizer", ["write failed: ENOSPC"])
    aws.log_lines("quiet", ["START", "all good", "END"])
    found = _scan(runtime, "tmp-storage")
    assert set(found) == {"thumbnails", "resizer"}
    message = found["thumbnails"]["message"]
    assert "logged 2 time(s) in the last 24 h in /aws/lambda/thumbnails" in message
    assert "ephemeral storage 512 MB" in message and "ephemeral storage 1024 MB" in found["resizer"]["message"]
    assert "Clean /tmp at the start of each invocation and in a finally block" in message
    assert "hunter2" not in json.dumps(found) and "frame-0042" not in json.dumps(found)  # lines are counted, not quoted
    assert calls.calls.count("logs.StartQuery") == 1  # one query over every log group
    assert "logs.FilterLogEvents" not in calls.calls


def test_old_matches_are_outside_the_window(aws, make_runtime, tmp_path):
    aws.function("thumbnails")
    aws.log_lines("thumbnails", [ENOSPC_LINE], minutes_ago=3 * 60)
    assert "thumbnails" in _scan(make_runtime(), "tmp-storage")
    (tmp_path / "settings.yaml").write_text("{}\n")
    (tmp_path / "tmp-storage.yaml").write_text("params:\n  lookback_hours: 2\n")
    assert _scan(make_runtime(policies=tmp_path), "tmp-storage") == {}


def test_event_path_uses_filter_log_events(aws, runtime, calls):
    arn = aws.function("thumbnails")
    aws.log_lines("thumbnails", ["START", ENOSPC_LINE, "END"])
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {
        "functionName": arn, "ephemeralStorage": {"size": 1024}}), runtime=runtime)
    (finding,) = [f for f in report["findings"] if f["policy"] == "tmp-storage"]
    assert finding["outcome"] == "reported" and "logged 1 time(s)" in finding["message"]
    assert calls.calls.count("logs.FilterLogEvents") == 1 and "logs.StartQuery" not in calls.calls
    assert "hunter2" not in json.dumps(report)


def test_no_log_group_or_no_match_is_no_finding(aws, runtime):
    fresh, healthy = aws.function("fresh"), aws.function("healthy")
    aws.log_lines("healthy", ["START", "space is fine", "END"])
    for name, arn in (("fresh", fresh), ("healthy", healthy)):
        report = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {
            "functionName": name, "ephemeralStorage": {"size": 1024}}), runtime=runtime)
        assert report["skipped"] is None and report["function"] == arn and report["errors"] == [], name
        assert [f for f in report["findings"] if f["policy"] == "tmp-storage"] == [], name


def test_insights_stats_rows_as_aws_returns_them(aws, runtime):
    """AWS answers the query with ``stats`` rows (``@log`` as account:group); moto cannot: stub the logs
    calls only, and check polling, row parsing and a failed query."""
    import boto3
    from botocore.stub import Stubber

    from chalicelib.core.model import LogSearch
    from chalicelib.inventory import Inventory

    for name in ("thumbnails", "resizer"):
        aws.function(name)
    inventory = Inventory(runtime.clients("us-east-1"), "123456789012", sleep=lambda seconds: None)
    snapshots = list(inventory.all_functions())
    logs = boto3.client("logs", region_name="us-east-1")
    inventory.clients._clients["logs"] = logs
    groups = [{"logGroupName": "/aws/lambda/thumbnails"}, {"logGroupName": "/aws/lambda/resizer"}]
    with Stubber(logs) as stub:
        stub.add_response("describe_log_groups", {"logGroups": groups}, {"logGroupNamePrefix": "/aws/lambda/"})
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
        stub.add_response("get_query_results", {"status": "Complete", "results": [[
            {"field": "@log", "value": "123456789012:/aws/lambda/thumbnails"}, {"field": "hits", "value": "7"},
            {"field": "last", "value": "2025-06-10 14:02:37.412"}]]}, {"queryId": "q1"})
        inventory.load({"logs": snapshots}, {}, {s.arn: LogSearch(("ENOSPC",), 24) for s in snapshots})
        stub.assert_no_pending_responses()
    hits = {s.name: s.log_hits for s in snapshots}
    assert hits["thumbnails"].count == 7 and hits["thumbnails"].last_seen_ms == 1749564157412
    assert hits["resizer"].count == 0

    for snapshot in snapshots:
        snapshot.loaded.discard("logs")
    inventory = Inventory(runtime.clients("us-east-1"), "123456789012")
    inventory.clients._clients["logs"] = logs
    with Stubber(logs) as stub:
        stub.add_response("describe_log_groups", {"logGroups": groups}, {"logGroupNamePrefix": "/aws/lambda/"})
        stub.add_response("start_query", {"queryId": "q2"})
        stub.add_response("get_query_results", {"status": "Failed", "results": []}, {"queryId": "q2"})
        inventory.load({"logs": snapshots}, {}, {s.arn: LogSearch(("ENOSPC",), 24) for s in snapshots})
    assert {s.unavailable.get("logs") for s in snapshots} == {"Logs Insights query Failed"}


def test_a_sweep_waits_for_a_running_insights_query_as_wired_in_production(aws, runtime):
    """On AWS a Logs Insights query is always Scheduled or Running at first. The sweep must wait for it with
    the inventory exactly as the runtime builds it (nothing patched; it really sleeps twice): this raised
    AttributeError ('sleep') before the readers declared their effects. Only the logs calls are stubbed
    (moto answers every query Complete at once)."""
    import boto3
    from botocore.stub import Stubber

    for name in ("thumbnails", "resizer"):
        aws.function(name)
    runtime.policy_set = runtime.policy_set.only("tmp-storage")
    engine = runtime.engine("123456789012", "us-east-1")
    logs = boto3.client("logs", region_name="us-east-1")
    engine.inventory.clients._clients["logs"] = logs
    groups = [{"logGroupName": "/aws/lambda/thumbnails"}, {"logGroupName": "/aws/lambda/resizer"}]
    with Stubber(logs) as stub:
        stub.add_response("describe_log_groups", {"logGroups": groups}, {"logGroupNamePrefix": "/aws/lambda/"})
        stub.add_response("start_query", {"queryId": "q1"})
        stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q1"})
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
        stub.add_response("get_query_results", {"status": "Complete", "results": [[
            {"field": "@log", "value": "123456789012:/aws/lambda/thumbnails"}, {"field": "hits", "value": "3"},
            {"field": "last", "value": "2025-06-10 14:02:37.412"}]]}, {"queryId": "q1"})
        report = engine.sweep(act=False).to_json()
        stub.assert_no_pending_responses()
    assert report["errors"] == []
    assert [(f["policy"], f["function"].rsplit(":", 1)[-1]) for f in report["findings"]] == [
        ("tmp-storage", "thumbnails")]
