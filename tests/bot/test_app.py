"""The deployed handlers through chalice.test.Client, with recorded CloudTrail events, on moto."""

from __future__ import annotations

import pytest
from chalice.test import Client

from app import CONFIG_CHANGES, app
from chalicelib.bot import handlers
from safetycatch.provision import init_state_table


@pytest.fixture
def client(aws, runtime):
    handlers.reset_runtime(runtime)
    with Client(app) as chalice_client:
        yield chalice_client


def test_rule_matches_every_watched_event_name(event):
    """Lambda names by prefix (CloudTrail adds API-version suffixes), API Gateway names exactly."""
    branches = {b["source"][0]: b["detail"]["eventName"] for b in CONFIG_CHANGES["$or"]}
    for name in ("lambda-UpdateFunctionConfiguration20150331v2", "lambda-TagResource20170331v2",
                 "lambda-PutProvisionedConcurrencyConfig", "apigateway-PutIntegration",
                 "apigatewayv2-CreateIntegration"):
        evt = event(name)
        names = branches[evt["source"]]  # each source's own names only
        assert any(evt["detail"]["eventName"].startswith(p["prefix"]) if isinstance(p, dict)
                   else evt["detail"]["eventName"] == p for p in names), name


def test_config_change_event_is_enforced(client, aws, event):
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    response = client.lambda_.invoke("on_config_change", event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert response.payload["findings"][0]["outcome"] == "fixed"
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


def test_http_api_integration_event_is_enforced(client, aws, event):
    arn = aws.function("example-fn", timeout=30)
    aws.http_api(arn, route="POST /orders")
    response = client.lambda_.invoke("on_config_change", event("apigatewayv2-CreateIntegration"))
    (finding,) = response.payload["findings"]
    assert finding["fix"]["params"] == {"Timeout": 26} and finding["outcome"] == "fixed"


def test_failed_and_own_events_do_nothing(client, aws, event, calls):
    aws.function("example-fn", timeout=30)
    for name in ("lambda-UpdateFunctionConfiguration20150331v2-AccessDenied", "lambda-PutFunctionConcurrency20171031"):
        assert client.lambda_.invoke("on_config_change", event(name)).payload["skipped"]
    assert calls.calls == []


def test_idempotency_records_live_in_the_state_table(aws, make_runtime, event):
    init_state_table(make_runtime().clients(), "safetycatch-state")
    runtime = make_runtime(table="safetycatch-state")
    handlers.reset_runtime(runtime)
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    with Client(app) as chalice_client:
        first = chalice_client.lambda_.invoke("on_config_change", event("lambda-UpdateFunctionConfiguration20150331v2"))
        # a cold container (fresh runtime, same table) gets the same event again: it must not act twice
        handlers.reset_runtime(make_runtime(table="safetycatch-state"))
        aws.client("lambda").update_function_configuration(FunctionName="example-fn", Timeout=31)
        second = chalice_client.lambda_.invoke(
            "on_config_change", event("lambda-UpdateFunctionConfiguration20150331v2")
        )
    assert first.payload["findings"][0]["outcome"] == "fixed"
    assert second.payload["skipped"] == "duplicate event (already handled)"
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 31
    items = aws.client("dynamodb").scan(TableName="safetycatch-state")["Items"]
    kinds = sorted({i["pk"]["S"].split("#")[0] for i in items})
    assert kinds == ["audit", "changes", "changes-function", "changes-policy", "claim", "fix", "heartbeat",
                     "idempotency"]


def test_scheduled_sweep_enforces_the_whole_region(client, aws):
    """The dev stage has a sweep queue: the schedule queues its own scope, and the sweep worker enforces it."""
    url = aws.client("sqs").create_queue(QueueName="safetycatch-dev-sweep")["QueueUrl"]
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    aws.sqs_mapping(aws.function("orders-worker"), "orders-queue")
    scheduled = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [
        "arn:aws:events:us-east-1:123456789012:rule/safetycatch-dev-scheduled_sweep"], region="us-east-1")
    assert client.lambda_.invoke("scheduled_sweep", scheduled).payload["scopes"] == 1
    (message,) = aws.client("sqs").receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    work = client.events.generate_sqs_event([message["Body"]], queue_name="safetycatch-dev-sweep")
    assert client.lambda_.invoke("sweep_worker", work).payload == {"batchItemFailures": []}
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25
    assert handlers.current_runtime().store.approvals("PENDING"), "the mapping's fix awaits approval"


def test_the_slack_worker_name_is_the_routes_constant():
    """app.py writes the worker's name out (so that loading it loads no Slack module): it must stay the one the
    routes invoke."""
    from chalicelib.bot import slack_routes

    assert [f.name for f in app.pure_lambda_functions] == [slack_routes.WORKER_NAME]


def test_import_app_loads_neither_boto3_nor_slack_sdk_until_a_handler_runs(tmp_path):
    """Cold start (bench/import_time.py): each Lambda function loads its handler's modules on its first event;
    the Slack routes never load the sweep engine, the event handlers never load slack-sdk."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    probe = ("import sys, app; print(sorted(set(sys.modules) & {'boto3', 'botocore.client', 'slack_sdk'})); "
             "app._events(); print('slack_sdk' in sys.modules, 'boto3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "AWS_DEFAULT_REGION": "us-east-1"})
    assert out.stdout.split("\n")[:2] == ["[]", "False True"], out.stdout + out.stderr
