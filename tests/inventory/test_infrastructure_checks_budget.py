"""The sweep's AWS call budget for vpc-no-egress, recursive-trigger, sync-error-status and tmp-storage."""

from __future__ import annotations

import collections

BUDGET_PER_FUNCTION = 1.5
PER_FUNCTION_READS = {"lambda.GetFunctionConcurrency", "lambda.GetFunctionRecursionConfig", "lambda.GetPolicy",
                      "logs.FilterLogEvents", "lambda.GetFunction"}


def _account(aws):
    """20 functions: VPC ones in two VPCs, S3 / SNS / SQS triggers over 3 roles, APIs, logs; one loop."""
    write_all = {"Statement": [{"Effect": "Allow", "Action": ["s3:PutObject", "sqs:SendMessage"], "Resource": "*"}]}
    read_only = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
    roles = [aws.execution_role("writer", {"w": write_all}), aws.execution_role("reader", {"r": read_only}),
             aws.execution_role("reader-managed", managed=(read_only,))]
    nets = [aws.vpc("nat"), aws.vpc("igw")]
    arns = []
    for i in range(20):
        extra = {"VpcConfig": {"SubnetIds": nets[i % 2]["subnets"], "SecurityGroupIds": []}} if i < 6 else {}
        response = aws.client("lambda").create_function(
            FunctionName=f"fn-{i:02d}", Runtime="python3.12", Role=roles[0 if i == 7 else 1 + i % 2],
            Handler="app.handler", Code={"ZipFile": aws._zip}, Timeout=10, MemorySize=512, **extra)
        arns.append(response["FunctionArn"])
    for i in (6, 7, 8):
        aws.bucket_trigger(f"uploads-{i}", arns[i])
    for i in (9, 10):
        aws.topic_trigger(f"topic-{i}", arns[i])
    for i in (11, 12, 13, 14):
        aws.sqs_mapping(arns[i], f"queue-{i}")
    aws.custom_rest_api(arns[15], path="a")
    aws.rest_api(arns[16], path="b")
    for i in range(10, 20):
        aws.log_lines(f"fn-{i:02d}", ["START", "No space left on device" if i == 19 else "ok", "END"])
    return arns


def test_sweep_call_budget_for_these_checks(aws, make_runtime, calls, tmp_path):
    _account(aws)
    (tmp_path / "settings.yaml").write_text("{}\n")
    for policy in ("vpc-no-egress", "recursive-trigger", "sync-error-status", "tmp-storage"):
        (tmp_path / f"{policy}.yaml").write_text("{}\n")
    runtime = make_runtime(policies=tmp_path)
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False).to_json()
    assert report["errors"] == [] and report["functions_scanned"] == 20
    found = collections.Counter(f["policy"] for f in report["findings"])
    assert found == {"vpc-no-egress": 3, "recursive-trigger": 1, "sync-error-status": 1, "tmp-storage": 1}
    by_operation = collections.Counter(calls.calls)
    per_function = {op: n for op, n in by_operation.items() if op in PER_FUNCTION_READS}
    # Only the flagged function pays per-function reads (its fix's prior values); no GetPolicy in a sweep.
    assert per_function == {"lambda.GetFunction": 1, "lambda.GetFunctionRecursionConfig": 1}, by_operation
    assert by_operation["s3.GetBucketNotificationConfiguration"] == 3  # one per bucket, whatever the functions
    assert by_operation["logs.StartQuery"] == 1
    total = len(calls.calls)
    assert total <= BUDGET_PER_FUNCTION * 20, by_operation
    assert calls.writes == []
