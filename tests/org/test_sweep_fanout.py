"""The deployed organisation sweep (issue 12) on moto with three member accounts: the schedule fans out one SQS
message per (account, region), the sweep worker sweeps each through the member role, a failing scope comes back
as a partial batch failure and ends in the dead-letter queue, each scope emits EMF metrics, and the run posts
exactly one digest. Handlers are called as the deployed rule and event source call them (chalice.test.Client)."""

from __future__ import annotations

import json

import pytest
from botocore.credentials import AssumeRoleCredentialFetcher
from botocore.exceptions import ClientError
from chalice.test import Client

from app import app
from chalicelib.bot import handlers
from chalicelib.org import fanout
from chalicelib.store.state import table_definition
from safetycatch.local.sandbox import member_sandbox

MEMBERS = ("111111111111", "222222222222", "333333333333")
BROKEN = "333333333333"  # its member role cannot be assumed
TABLE, QUEUE, DLQ = "safetycatch-fanout", "safetycatch-dev-sweep", "safetycatch-dev-sweep-dlq"


@pytest.fixture
def org(aws, monkeypatch):
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    sqs = aws.client("sqs")
    dlq = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName=DLQ)["QueueUrl"],
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=QUEUE, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq, "maxReceiveCount": str(fanout.MAX_RECEIVES)})})
    monkeypatch.setenv("SAFETYCATCH_SWEEP_QUEUE", QUEUE)
    monkeypatch.setenv("SAFETYCATCH_SWEEP_ACCOUNTS", ",".join(MEMBERS))
    monkeypatch.setenv("SAFETYCATCH_SWEEP_REGIONS", "us-east-1")
    first = member_sandbox(MEMBERS[0])
    first.rest_api(first.function("orders-api", timeout=30), path="orders")  # apigw-timeout: fixed (auto)
    member_sandbox(MEMBERS[1]).function("billing", tags={"critical": "true"})  # reserved-concurrency
    real = AssumeRoleCredentialFetcher.fetch_credentials

    def fetch(self):
        if BROKEN in self._role_arn:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")
        return real(self)

    monkeypatch.setattr(AssumeRoleCredentialFetcher, "fetch_credentials", fetch)
    return sqs


@pytest.fixture
def client(org, make_runtime):
    handlers.reset_runtime(make_runtime(table=TABLE))
    with Client(app) as chalice_client:
        yield chalice_client


def _deliver(sqs, client):
    """One poll of the sweep worker's event source: receive, invoke, delete what did not fail."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                   AttributeNames=["All"]).get("Messages", [])
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m["Attributes"], "eventSource": "aws:sqs"} for m in messages]
    failed = client.lambda_.invoke("sweep_worker", {"Records": records}).payload["batchItemFailures"]
    failed_ids = {f["itemIdentifier"] for f in failed}
    for m in messages:
        if m["MessageId"] not in failed_ids:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"])["account"] for m in messages if m["MessageId"] in failed_ids], len(messages)


def test_the_organisation_sweep_fans_out_and_reports_once(org, client, aws, monkeypatch, capsys, captured_log):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "safetycatch-dev-sweep_worker")  # EMF is written in Lambda
    scheduled = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [
        "arn:aws:events:us-east-1:123456789012:rule/safetycatch-dev-scheduled_sweep"], region="us-east-1")
    run = client.lambda_.invoke("scheduled_sweep", scheduled).payload
    assert run["scopes"] == 3

    failed, received = _deliver(org, client)
    assert received == 3 and failed == [BROKEN]  # a partial batch failure: the other scopes are done
    assert member_sandbox(MEMBERS[0]).client("lambda").get_function(
        FunctionName="orders-api")["Configuration"]["Timeout"] == 25, "fixed in the member account"
    for _ in range(fanout.MAX_RECEIVES - 1):
        assert _deliver(org, client)[0] == [BROKEN]
    assert _deliver(org, client)[1] == 0
    dlq = org.get_queue_url(QueueName=DLQ)["QueueUrl"]
    (dead,) = org.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(dead["Body"])["account"] == BROKEN

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    swept = {(m["Account"], m["Region"]): m["FunctionsSwept"] for m in emf if "FunctionsSwept" in m}
    assert swept == {(MEMBERS[0], "us-east-1"): [1.0], (MEMBERS[1], "us-east-1"): [1.0]}
    assert sum(1 for m in emf if m.get("Account") == BROKEN and "ScopesFailed" in m) == fanout.MAX_RECEIVES

    digests = [json.loads(line) for line in captured_log.getvalue().splitlines() if "sweep run digest" in line]
    assert len(digests) == 1, "one digest per run"
    assert digests[0]["text"] == (f"Sweep {run['run_id']}: 2 of 3 scopes swept (2 functions), 1 failed: "
                                  f"{BROKEN} us-east-1. Findings: apigw-timeout 1, reserved-concurrency 1.")


def test_a_redelivered_scope_is_swept_once(org, client, calls):
    """SQS delivers at least once: the same message twice sweeps and counts its scope once."""
    runtime = handlers.current_runtime()
    run = fanout.start_run(runtime, org.get_queue_url(QueueName=QUEUE)["QueueUrl"])
    body = json.dumps({"run": run["run_id"], "account": MEMBERS[0], "region": "us-east-1"})
    records = [{"messageId": "m1", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}]
    assert fanout.sweep_batch(runtime, records) == {"batchItemFailures": []}
    calls.clear()
    assert fanout.sweep_batch(runtime, [{**records[0], "messageId": "m2"}]) == {"batchItemFailures": []}
    assert not [c for c in calls.calls if c.startswith("lambda.")], "no second sweep"
    assert fanout.digest(runtime, run["run_id"])["scopes"] == 1


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"run": "x" * 32, "account": "1", "region": "r"}),
                                  json.dumps({"run": "a" * 32, "account": "111111111111", "region": "../etc"})])
def test_hostile_work_items_are_dropped_without_any_call(aws, runtime, calls, body):
    assert fanout.sweep_batch(runtime, [{"messageId": "m", "body": body}]) == {"batchItemFailures": []}
    assert calls.calls == []


def test_the_digest_says_where_members_could_not_forward(org, client, monkeypatch, captured_log):
    """A member's forwarding rules keep what the bot's bus refused in their dead-letter queue (deploy/member-account
    .yaml): each scope counts it through the member role, and the run's digest says where, so nobody has to look."""
    monkeypatch.setenv("SAFETYCATCH_SWEEP_ACCOUNTS", ",".join(MEMBERS[:2]))
    monkeypatch.setenv("SAFETYCATCH_MEMBER_DLQ", "safetycatch-dev-forward-dead-letters")
    sqs = member_sandbox(MEMBERS[1]).client("sqs")
    url = sqs.create_queue(QueueName="safetycatch-dev-forward-dead-letters")["QueueUrl"]
    for _ in range(2):  # as EventBridge puts them: the event as the body, why in the attributes
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail-type": "AWS API Call via CloudTrail"}),
                         MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "NO_PERMISSIONS"}})
    scheduled = client.events.generate_cw_event("aws.events", "Scheduled Event", {}, [
        "arn:aws:events:us-east-1:123456789012:rule/safetycatch-dev-scheduled_sweep"], region="us-east-1")
    run = client.lambda_.invoke("scheduled_sweep", scheduled).payload
    assert _deliver(org, client) == ([], 2)
    (digest,) = [json.loads(line) for line in captured_log.getvalue().splitlines() if "sweep run digest" in line]
    assert digest["summary"]["undelivered"] == {f"{MEMBERS[1]} us-east-1": 2}, "the member without the queue: none"
    assert digest["text"].endswith(
        f"Not forwarded to the bot: 2 event(s) wait in the forwarding dead-letter queue of {MEMBERS[1]} us-east-1 (2); "
        "`safetycatch doctor --all-accounts` says why.") and run["run_id"] in digest["text"]
