"""recursive-trigger on moto: triggers × role policies, the S3 / IAM events, and the fix (recursion API stubbed)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.act import fixes
from chalicelib.act.gateway import Gateway
from chalicelib.bot.handlers import handle_event
from chalicelib.core.model import FixSpec
from safetycatch.local.cloudtrail import api_call

BUCKET = "orders-uploads-123456789012"
WRITE_UPLOADS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}


def _orders_api(aws, policy=None, prefix="incoming/", managed=(), role="example-fn-role"):
    role_arn = aws.execution_role(role, {"example-fn-write-uploads": policy} if policy else {}, managed)
    arn = _function_with_role(aws, "example-fn", role_arn)
    aws.bucket_trigger(BUCKET, arn, prefix=prefix)
    return arn


def _function_with_role(aws, name, role_arn, **extra):
    response = aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
        Code={"ZipFile": aws._zip}, Timeout=10, MemorySize=512, **extra)
    return response["FunctionArn"]


def _findings(report, policy="recursive-trigger"):
    return [f for f in report["findings"] if f["policy"] == policy]


def _scan(runtime):
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False).to_json()
    assert report["errors"] == []
    return {f["function"].rsplit(":", 1)[-1]: f for f in _findings(report)}


def test_bucket_notification_event_names_the_loop_and_asks_approval(aws, runtime, event):
    _orders_api(aws, WRITE_UPLOADS)
    report = handle_event(event("s3-PutBucketNotification"), runtime=runtime)
    assert report["skipped"] is None and report["functions"] == [report["function"]]
    (finding,) = report["findings"]  # only the policy a notification change can affect
    assert finding["policy"] == "recursive-trigger" and finding["outcome"] == "pending-approval"
    assert finding["severity"] == "critical"
    assert finding["message"].startswith(
        f"example-fn → writes s3://{BUCKET}/incoming/ → triggers example-fn (s3:ObjectCreated:*; s3:PutObject "
        f"allowed by example-fn-write-uploads; decided by the local policy evaluator: SimulatePrincipalPolicy is "
        f"not available here")  # moto lacks it: the local evaluator decides and says why
    # moto has no recursion API: the fix says so and keeps to the concurrency cap
    assert (
        "RecursiveLoop=Terminate: unavailable (GetFunctionRecursionConfig is not available here)" in finding["message"]
    )
    assert finding["fix"]["action"] == "stop-recursive-loop"
    assert finding["fix"]["params"] == {"ReservedConcurrentExecutions": 10}
    assert finding["fix"]["prior"] == {"ReservedConcurrentExecutions": None}
    (approval,) = runtime.store.approvals("PENDING")
    assert approval["id"] == finding["approval_id"] and approval["policy"] == "recursive-trigger"


@pytest.mark.parametrize(
    "policy, loops",
    [
        (WRITE_UPLOADS, True),
        ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}, True),
        ({"Statement": [{"Effect": "Allow", "NotAction": ["iam:*", "sts:*"], "Resource": "*"}]}, True),
        (
            {"Statement": [{"Effect": "Allow", "Action": "S3:Put*", "Resource": f"arn:aws:s3:::{BUCKET}/incoming/*"}]},
            True,
        ),
        ({"Statement": {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::orders-*/in*"}}, True),
        # writes only under outgoing/, the notification fires on incoming/: no loop
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/outgoing/*"}
                ]
            },
            False,
        ),
        # an explicit Deny on the bucket wins over s3:*
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"},
                ]
            },
            False,
        ),
        # a Deny on part of the triggering keys does not close the loop
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/incoming/x/*"},
                ]
            },
            True,
        ),
        # a conditional Deny may not apply: still a loop
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": "s3:*",
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"s3:x-amz-acl": "private"}},
                    },
                ]
            },
            True,
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}, False),
        (
            {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "NotResource": f"arn:aws:s3:::{BUCKET}/*"}]},
            False,
        ),
    ],
)
def test_role_policy_shapes(aws, runtime, policy, loops):
    _orders_api(aws, policy)
    assert ("example-fn" in _scan(runtime)) is loops


def test_attached_managed_policy_counts_and_attach_event_re_evaluates_the_role(aws, runtime):
    _orders_api(aws, None, managed=(WRITE_UPLOADS,))
    _function_with_role(aws, "orders-audit", aws.client("iam").get_role(RoleName="example-fn-role")["Role"]["Arn"])
    aws.function("unrelated")
    event = api_call("AttachRolePolicy", {"roleName": "example-fn-role",
                                          "policyArn": "arn:aws:iam::123456789012:policy/example-fn-role-managed-0"},
                     None, service="iam")
    report = handle_event(event, runtime=runtime)
    assert sorted(f.rsplit(":", 1)[-1] for f in report["functions"]) == ["example-fn", "orders-audit"]
    (finding,) = report["findings"]
    assert finding["function"].endswith(":example-fn")
    assert "allowed by example-fn-role-managed-0 (arn:aws:iam::123456789012:policy/example-fn-role-managed-0)" \
        in finding["message"]


def test_put_role_policy_event_fixture(aws, runtime, event):
    _orders_api(aws, WRITE_UPLOADS)
    report = handle_event(event("iam-PutRolePolicy"), runtime=runtime)
    assert [f["policy"] for f in report["findings"]] == ["recursive-trigger"]
    assert report["findings"][0]["outcome"] == "pending-approval"


def test_sqs_sns_and_dynamodb_stream_loops(aws, runtime):
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage*", "Resource": "arn:aws:sqs:us-east-1:123456789012:jobs"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:123456789012:events"},
            {
                "Effect": "Allow",
                "Action": ["dynamodb:UpdateItem"],
                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            },
        ]
    }
    role = aws.execution_role("worker-role", {"writes": policy})
    worker = _function_with_role(aws, "worker", role)
    aws.sqs_mapping(worker, "jobs")
    aws.topic_trigger("events", worker)
    table = aws.client("dynamodb").create_table(
        TableName="orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]
    aws.client("lambda").create_event_source_mapping(EventSourceArn=table["LatestStreamArn"], FunctionName="worker",
                                                     StartingPosition="LATEST")
    idle = _function_with_role(aws, "idle-consumer", role)
    aws.sqs_mapping(idle, "jobs-copy")
    found = _scan(runtime)
    message = found["worker"]["message"]
    assert "worker → writes SQS queue jobs → triggers worker" in message
    assert "worker → writes SNS topic events → triggers worker (subscription; sns:Publish" in message
    assert "worker → writes DynamoDB table orders → triggers worker (its stream" in message
    assert "idle-consumer" not in found  # its queue (jobs-copy, mapped above) is not one it can write to


def test_disabled_mapping_is_no_loop(aws, runtime):
    role = aws.execution_role("r", {"p": {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}})
    arn = _function_with_role(aws, "worker", role)
    uuid = aws.sqs_mapping(arn, "jobs")
    assert "worker" in _scan(runtime)
    aws.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
    assert "worker" not in _scan(runtime)


@pytest.fixture
def recursion_api(monkeypatch):
    """Stub ONLY Get/PutFunctionRecursionConfig (moto lacks them) on a runtime's Lambda client."""
    stubbers = []

    def stub(runtime):
        real = runtime.clients("us-east-1")("lambda")
        stubbed = boto3.client("lambda", region_name="us-east-1")
        stubber = Stubber(stubbed)
        monkeypatch.setattr(real, "get_function_recursion_config", stubbed.get_function_recursion_config)
        monkeypatch.setattr(real, "put_function_recursion_config", stubbed.put_function_recursion_config)
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield stub
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def test_fix_terminates_the_loop_caps_concurrency_and_undo_restores_both(aws, make_runtime, tmp_path, recursion_api):
    arn = _orders_api(aws, WRITE_UPLOADS)
    aws.concurrency_history("example-fn", peak=40)
    (tmp_path / "settings.yaml").write_text("{}\n")
    (tmp_path / "recursive-trigger.yaml").write_text("mode: auto\n")
    runtime = make_runtime(policies=tmp_path)
    recursion_api = recursion_api(runtime)
    recursion_api.add_response("get_function_recursion_config", {"RecursiveLoop": "Allow"}, {"FunctionName": arn})
    recursion_api.add_response("put_function_recursion_config", {"RecursiveLoop": "Terminate"},
                               {"FunctionName": arn, "RecursiveLoop": "Terminate"})
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True).to_json()
    (finding,) = _findings(report)
    assert finding["outcome"] == "fixed"
    assert finding["fix"]["params"] == {"RecursiveLoop": "Terminate", "ReservedConcurrentExecutions": 60}
    assert finding["fix"]["prior"] == {"RecursiveLoop": "Allow", "ReservedConcurrentExecutions": None}
    assert "cap reserved concurrency at 60 (peak 40)" in finding["message"]
    lam = aws.client("lambda")
    assert lam.get_function_concurrency(FunctionName="example-fn")["ReservedConcurrentExecutions"] == 60

    recursion_api.add_response("put_function_recursion_config", {"RecursiveLoop": "Allow"},
                               {"FunctionName": arn, "RecursiveLoop": "Allow"})
    fixes.undo(
        Gateway(runtime.clients("us-east-1")), FixSpec.from_json(runtime.store.get_fix(finding["fix_id"])["spec"])
    )
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="example-fn")


def test_already_terminating_and_capped_means_nothing_to_fix(aws, runtime, recursion_api):
    arn = _orders_api(aws, WRITE_UPLOADS)
    aws.client("lambda").put_function_concurrency(FunctionName="example-fn", ReservedConcurrentExecutions=5)
    recursion_api = recursion_api(runtime)
    recursion_api.add_response("get_function_recursion_config", {"RecursiveLoop": "Terminate"}, {"FunctionName": arn})
    report = handle_event(api_call("PutFunctionRecursionConfig", {"functionName": arn, "recursiveLoop": "Terminate"}),
                          runtime=runtime)
    (finding,) = _findings(report)
    assert finding["fix"] is None and finding["outcome"] == "reported"
    assert "RecursiveLoop is already Terminate" in finding["message"]
    assert "reserved concurrency already caps it at 5" in finding["message"]


def test_dry_run_writes_nothing(aws, make_runtime, calls, event):
    _orders_api(aws, WRITE_UPLOADS)
    runtime = make_runtime(mode="dry-run")
    report = handle_event(event("s3-PutBucketNotification"), runtime=runtime)
    assert [f["outcome"] for f in report["findings"]] == ["dry-run"]
    assert calls.writes == []


def test_notification_to_a_queue_no_function_consumes_is_skipped(runtime, aws, event):
    aws.queue("q")
    recorded = event("s3-PutBucketNotification")
    config = recorded["detail"]["requestParameters"]["NotificationConfiguration"]
    config["QueueConfiguration"] = {"Queue": "arn:aws:sqs:us-east-1:123456789012:q", "Event": "s3:ObjectCreated:*"}
    del config["CloudFunctionConfiguration"]
    report = handle_event(recorded, runtime=runtime)
    assert report["skipped"] == "no function is affected by this change"  # followed: nothing consumes q


def test_notification_to_nothing_that_leads_to_a_function_is_skipped(runtime, aws, event):
    recorded = event("s3-PutBucketNotification")
    config = recorded["detail"]["requestParameters"]["NotificationConfiguration"]
    del config["CloudFunctionConfiguration"]
    report = handle_event(recorded, runtime=runtime)
    assert report["skipped"] == "the notification configuration invokes no Lambda function"


def test_notification_listing_several_functions(aws, runtime, event):
    _orders_api(aws, WRITE_UPLOADS)
    aws.function("thumbnails")
    recorded = event("s3-PutBucketNotification")
    config = recorded["detail"]["requestParameters"]["NotificationConfiguration"]
    single = config["CloudFunctionConfiguration"]
    config["CloudFunctionConfiguration"] = [
        single,
        {**single, "Id": "thumbs", "CloudFunction": single["CloudFunction"].replace("example-fn", "thumbnails")},
    ]
    report = handle_event(recorded, runtime=runtime)
    assert [f.rsplit(":", 1)[-1] for f in report["functions"]] == ["example-fn", "thumbnails"]
    assert [f["function"].rsplit(":", 1)[-1] for f in report["findings"]] == ["example-fn"]
    assert json.loads(json.dumps(report))["functions"] == report["functions"], "the report is plain JSON"
