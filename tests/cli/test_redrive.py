"""``safetycatch redrive`` on moto SQS: both record shapes, garbage kept, dry-run by default, deletes only what was
handled, and idempotency keeps an event that already acted from acting twice."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.core.aws import Clients
from safetycatch import redrive
from safetycatch.local.cloudtrail import api_call
from safetycatch.main import main
from safetycatch.provision import init_state_table

TABLE = "safetycatch-redrive-state"
QUEUE = "safetycatch-test-dead-letters"
ORDERS = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
BILLING = "arn:aws:lambda:us-east-1:123456789012:function:billing-api"


def lambda_record(event: dict, function: str = "on_config_change", condition: str = "RetriesExhausted") -> str:
    """An on-failure record as Lambda sends it to an SQS destination (Lambda developer guide, "Capturing records
    of Lambda asynchronous invocations": the event under requestPayload, the failure under responseContext /
    responsePayload)."""
    return json.dumps({
        "version": "1.0", "timestamp": "2026-12-01T09:30:05.568Z",
        "requestContext": {"requestId": "e4b46cbf-b738-4f2e-8880-a18cdf61200e", "condition": condition,
                           "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:safetycatch-prod-"
                                          f"{function}:$LATEST", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "TooManyRequestsException",
                            "errorMessage": "An error occurred (TooManyRequestsException) when calling the "
                                            "GetFunction operation (reached max retries: 7): Rate exceeded"},
    })


EVENTBRIDGE_ATTRIBUTES = {  # EventBridge user guide, "Using dead-letter queues to process undelivered events"
    "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/safetycatch-prod-OnConfigChangeOnConfigChangeEvent-1X",
    "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:safetycatch-prod-on_config_change",
    "ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": "Rate Exceeded.",
    "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds", "RETRY_ATTEMPTS": "42",
}


@pytest.fixture
def dlq(aws, monkeypatch):
    """The API-fronted functions with a too-long timeout, the state table, and a dead-letter queue holding: a
    Lambda on-failure record, an EventBridge dead-letter message, and two messages nobody can parse."""
    for name in ("orders-api", "billing-api"):
        aws.rest_api(aws.function(name, timeout=30), path=name)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"SqsManagedSseEnabled": "true"})["QueueUrl"]
    orders = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})
    billing = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": BILLING, "timeout": 30})
    sqs.send_message(QueueUrl=url, MessageBody=lambda_record(orders))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(billing), MessageAttributes={
        k: {"DataType": "String", "StringValue": v} for k, v in EVENTBRIDGE_ATTRIBUTES.items()})
    sqs.send_message(QueueUrl=url, MessageBody="{not json")
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"orders": [1, 2, 3]}))
    monkeypatch.setenv("SAFETYCATCH_DLQ", QUEUE)
    return url, orders, billing


def _run(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["redrive", "--format", "json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _waiting(aws, url: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _timeout(aws, name: str) -> int:
    return aws.client("lambda").get_function(FunctionName=name)["Configuration"]["Timeout"]


def test_without_fix_both_shapes_are_decided_nothing_changes_nothing_is_deleted(dlq, aws, capsys):
    url, orders, billing = dlq
    code, data = _run(capsys)
    assert code == 0 and (data["deleted"], data["kept"]) == (0, 4)
    by_id = {e["event_id"]: e for e in data["events"]}
    assert set(by_id) == {orders["detail"]["eventID"], billing["detail"]["eventID"]}
    for entry, function, source in ((by_id[orders["detail"]["eventID"]], ORDERS, "lambda-destination"),
                                    (by_id[billing["detail"]["eventID"]], BILLING, "eventbridge-dlq")):
        assert {"event_id", "event_name", "function", "skipped", "findings"} <= set(entry), "as replay prints"
        assert entry["function"] == function and entry["message"]["source"] == source
        (finding,) = entry["findings"]
        assert (finding["policy"], finding["outcome"]) == ("apigw-timeout", "dry-run")
    assert by_id[orders["detail"]["eventID"]]["message"]["reason"].startswith(
        "RetriesExhausted: TooManyRequestsException: An error occurred")
    assert by_id[billing["detail"]["eventID"]]["message"]["reason"] == "SDK_CLIENT_ERROR: Rate Exceeded."
    assert by_id[billing["detail"]["eventID"]]["message"]["sender"] == EVENTBRIDGE_ATTRIBUTES["RULE_ARN"]
    assert sorted(u["reason"] for u in data["unparseable"]) == [
        "neither a Lambda invocation record nor an EventBridge event", "the body is not JSON"]
    assert (_timeout(aws, "orders-api"), _timeout(aws, "billing-api")) == (30, 30)
    assert _waiting(aws, url) == 4, "every message is visible again for the next run"


def test_fix_handles_both_shapes_deletes_them_and_keeps_the_garbage(dlq, aws, capsys, monkeypatch):
    url, orders, billing = dlq
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    init_state_table(Clients("us-east-1"), TABLE)
    code, data = _run(capsys, "--fix")
    assert code == 0 and (data["deleted"], data["kept"]) == (2, 2)
    assert sorted(f["outcome"] for e in data["events"] for f in e["findings"]) == ["fixed", "fixed"]
    assert all(e["message"]["deleted"] for e in data["events"])
    assert (_timeout(aws, "orders-api"), _timeout(aws, "billing-api")) == (25, 25)
    assert _waiting(aws, url) == 2
    bodies = sorted(m["Body"] for m in aws.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"])
    assert bodies == [json.dumps({"orders": [1, 2, 3]}), "{not json"], "kept, untouched"
    code, again = _run(capsys, "--fix")
    assert (again["events"], again["deleted"], again["kept"], len(again["unparseable"])) == ([], 0, 2, 2)


def test_an_event_that_already_acted_does_not_act_twice(aws, make_runtime, calls):
    """The invocation fixed the function, then timed out before Lambda saw it succeed: its record is in the queue.
    The idempotency record the handler wrote keeps the redrive from acting again, even though the function was
    changed back since (a new change has its own event)."""
    aws.rest_api(aws.function("orders-api", timeout=30), path="orders")
    runtime = make_runtime(table=TABLE)
    init_state_table(runtime.clients(), TABLE)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})
    assert handle_event(event, runtime=runtime)["findings"][0]["outcome"] == "fixed"  # the lost invocation
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", Timeout=30)
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=lambda_record(event, condition="RetriesExhausted"))
    calls.clear()
    run = redrive.redrive(runtime, runtime.clients()("sqs"), url, acting=True)
    (entry,) = run.events
    assert entry["skipped"] == "duplicate event (already handled)" and entry["findings"] == []
    assert "lambda.UpdateFunctionConfiguration" not in calls.writes
    assert (run.deleted, run.kept, _waiting(aws, url)) == (1, 0, 0), "handled: deleted"
    assert _timeout(aws, "orders-api") == 30


def test_an_event_that_fails_again_is_kept_and_reported(aws, make_runtime):
    from botocore.exceptions import ClientError

    aws.function("orders-api", timeout=30)
    runtime = make_runtime(table=TABLE)
    init_state_table(runtime.clients(), TABLE)
    event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})
    url = aws.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
    aws.client("sqs").send_message(QueueUrl=url, MessageBody=lambda_record(event))

    def throttled(event, runtime):
        raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"},
                           "ResponseMetadata": {"HTTPStatusCode": 429}}, "GetFunction")

    run = redrive.redrive(runtime, runtime.clients()("sqs"), url, acting=True, handler=throttled)
    (entry,) = run.events
    assert entry["errors"] == ["failed again: TooManyRequestsException: An error occurred (TooManyRequestsException) "
                               "when calling the GetFunction operation: Rate exceeded"]
    assert entry["message"]["deleted"] is False and (run.deleted, run.kept) == (0, 1)
    assert _waiting(aws, url) == 1


def test_what_the_handler_cannot_replay_is_reported_not_executed(aws, make_runtime):
    """A missed sweep, and a Slack click the worker never carried out: the click's payload claims who clicked, which
    nothing in the queue can verify, so it is reported (the approval is still pending) and never executed."""
    runtime = make_runtime(table=TABLE)
    init_state_table(runtime.clients(), TABLE)
    approval = runtime.store.create_approval(ORDERS, "batch-partial-failure", {"action": "x"}, 24)
    url = aws.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
    sweep = {"version": "0", "id": "5f1c", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "region": "us-east-1", "detail": {}}
    click = {"kind": "action", "verb": "approve", "id": approval["id"], "user": "U0ATTACKER", "channel": "C1"}
    for payload, function in ((sweep, "scheduled_sweep"), (click, "slack_worker")):
        aws.client("sqs").send_message(QueueUrl=url, MessageBody=lambda_record(payload, function))
    run = redrive.redrive(runtime, runtime.clients()("sqs"), url, acting=True)
    by_name = {e["event_name"]: e for e in run.events}
    assert by_name["scheduled sweep"]["skipped"].startswith("a missed scheduled sweep")
    assert "never carried out (approve " + approval["id"] in by_name["slack action"]["skipped"]
    assert runtime.store.get_approval(approval["id"])["status"] == "PENDING"
    assert (run.deleted, run.kept) == (2, 0)


def test_bad_input_is_one_line_and_exit_2(aws, capsys, monkeypatch):
    assert main(["redrive"]) == 2
    assert capsys.readouterr().err == (
        "safetycatch: redrive: name the dead-letter queue with --queue or SAFETYCATCH_DLQ\n")
    assert main(["redrive", "--queue", "no such queue!"]) == 2
    assert "neither an SQS queue URL nor a queue name" in capsys.readouterr().err
    assert main(["redrive", "--queue", "missing-queue"]) == 2
    assert capsys.readouterr().err == "safetycatch: redrive: no queue missing-queue in us-east-1\n"
    aws.client("sqs").create_queue(QueueName=QUEUE)
    assert main(["redrive", "--queue", QUEUE, "--fix"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("safetycatch: redrive --fix: set SAFETYCATCH_TABLE") and err.count("\n") == 1
