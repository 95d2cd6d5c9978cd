"""recursive-trigger through more than one hop, on moto: S3 → SNS / SQS, SNS → SQS, EventBridge rules (S3 events and
PutEvents), pipes from DynamoDB streams; the depth bound; the kill-switch scope; IAM's policy simulator.

moto builds every resource here (notifications to topics and queues, subscriptions, resource policies, rules,
buses, pipes). It has no SimulatePrincipalPolicy: where a test needs IAM's answer, only that call is stubbed
(botocore Stubber on the runtime's real IAM client); elsewhere the local evaluator decides and says why.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.bot.handlers import handle_event
from chalicelib.domain.event_patterns import may_match
from chalicelib.domain.iam_eval import glob_intersects, glob_match, glob_witness
from safetycatch.local.cloudtrail import api_call

ACCOUNT, REGION = "123456789012", "us-east-1"
WRITE_BUCKET = [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::uploads-b/*"}]


def _function(aws, name, statements, role=None):
    role_arn = aws.execution_role(role or f"{name}-role", {"writes": {"Statement": statements}})
    return aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler", Code={"ZipFile": aws._zip},
        Timeout=10, MemorySize=512)["FunctionArn"]


def _allow(service, action, resource, source):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"}, "Action": action,
        "Resource": resource, "Condition": {"ArnLike": {"aws:SourceArn": source}}}]})


def _queue(aws, name, service="", source=""):
    """A queue; with ``service`` / ``source``, the queue policy that lets that service send to it."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    if service:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _allow(service, "sqs:SendMessage", arn, source)})
    return arn


def _topic(aws, name, service="", source=""):
    sns = aws.client("sns")
    arn = sns.create_topic(Name=name)["TopicArn"]
    if service:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy",
                                 AttributeValue=_allow(service, "sns:Publish", arn, source))
    return arn


def _mapping(aws, function_arn, queue_arn):
    aws.client("lambda").create_event_source_mapping(EventSourceArn=queue_arn,
                                                     FunctionName=function_arn.rsplit(":", 1)[-1])


def _s3_sns_sqs_chain(aws, statements=WRITE_BUCKET):
    """uploads-b (prefix in/) → topic fanout → queue work → worker: three deliveries."""
    arn = _function(aws, "worker", statements)
    aws.client("s3").create_bucket(Bucket="uploads-b")
    topic = _topic(aws, "fanout", "s3", "arn:aws:s3:::uploads-b")
    queue = _queue(aws, "work", "sns", topic)
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    aws.client("s3").put_bucket_notification_configuration(Bucket="uploads-b", NotificationConfiguration={
        "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}]})
    _mapping(aws, arn, queue)
    return arn


def _loops(report):
    return {f["function"].rsplit(":", 1)[-1]: f for f in report["findings"] if f["policy"] == "recursive-trigger"}


def _sweep(runtime):
    report = runtime.engine(ACCOUNT, REGION).sweep(act=False).to_json()
    assert report["errors"] == []
    return report


def _tag_event(arn):
    """A tag change: re-evaluates every policy of one function (the event path)."""
    return api_call("TagResource20170331v2", {"resource": arn, "tags": {"team": "media"}})


THREE_HOPS = ("worker → writes s3://uploads-b/in/ → topic fanout → queue work → triggers worker (3 hops; "
              "s3:PutObject allowed by writes; decided by the local policy evaluator: SimulatePrincipalPolicy is "
              "not available here")


def test_s3_to_sns_to_sqs_to_the_function_is_named_hop_by_hop_in_a_sweep(aws, runtime):
    _s3_sns_sqs_chain(aws)
    finding = _loops(_sweep(runtime))["worker"]
    assert THREE_HOPS in finding["message"]
    assert finding["fix"]["action"] == "stop-recursive-loop"


def test_the_same_chain_found_by_an_event_reads_only_what_the_policies_name(aws, runtime, calls):
    arn = _s3_sns_sqs_chain(aws)
    aws.client("s3").create_bucket(Bucket="unrelated-b")  # never read: no policy names it
    calls.clear()
    report = handle_event(_tag_event(arn), runtime=runtime)
    assert THREE_HOPS in _loops(report)["worker"]["message"]
    reads = Counter(calls.calls)
    assert reads["sqs.GetQueueAttributes"] == 1 and reads["sns.GetTopicAttributes"] == 1  # their policies
    assert reads["s3.GetBucketNotificationConfiguration"] == 1 and "s3.ListBuckets" not in reads
    assert "sns.ListSubscriptions" not in reads and "events.ListRules" not in reads


def test_a_notification_to_a_topic_re_evaluates_the_functions_it_leads_to(aws, runtime, event):
    _s3_sns_sqs_chain(aws)
    aws.function("bystander")
    recorded = event("s3-PutBucketNotification")  # CloudTrail's record, now sending uploads-b's events to a topic
    request = recorded["detail"]["requestParameters"]
    request["bucketName"] = "uploads-b"
    request["NotificationConfiguration"] = {"TopicConfiguration": {
        "Id": "fanout", "Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:fanout", "Event": "s3:ObjectCreated:*"}}
    report = handle_event(recorded, runtime=runtime)
    assert [f.rsplit(":", 1)[-1] for f in report["functions"]] == ["worker"]  # topic → queue work → worker
    assert THREE_HOPS in _loops(report)["worker"]["message"]


def test_a_chain_whose_first_write_the_role_cannot_make_is_no_loop(aws, runtime):
    _s3_sns_sqs_chain(aws, [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::uploads-b/out/*"}])
    assert _loops(_sweep(runtime)) == {}  # it writes out/, the notification fires on in/


def test_sns_to_sqs_to_the_function(aws, runtime):
    arn = _function(aws, "notifier", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}])
    topic = _topic(aws, "events")
    queue = _queue(aws, "inbox", "sns", topic)
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
    _mapping(aws, arn, queue)
    message = _loops(handle_event(_tag_event(arn), runtime=runtime))["notifier"]["message"]
    assert message.startswith("notifier → writes SNS topic events → queue inbox → triggers notifier (2 hops; "
                              "sns:Publish allowed by writes")


@pytest.fixture
def eventbridge_notifications(runtime):
    """moto stores a bucket's EventBridgeConfiguration but leaves it out of GetBucketNotificationConfiguration's
    answer, where AWS returns it (an empty structure: botocore's model of the operation). Put back what moto stored,
    on that call only; everything else is moto's own answer."""
    from moto.s3.models import s3_backends

    def remember(params, context, **_):
        context["bucket"] = params.get("Bucket")

    def complete(parsed, context, **_):
        buckets = s3_backends[ACCOUNT]["aws"].buckets
        if "Error" in parsed or context["bucket"] not in buckets:
            return
        config = buckets[context["bucket"]].notification_configuration
        if config is not None and config.event_bridge is not None:
            parsed["EventBridgeConfiguration"] = {}

    for session in {runtime.session, runtime.clients().session}:
        session.events.register("provide-client-params.s3.GetBucketNotificationConfiguration", remember)
        session.events.register("after-call.s3.GetBucketNotificationConfiguration", complete)


def _s3_eventbridge_rule(aws, pattern_detail_type="Object Created", bucket_in_rule="media-b"):
    arn = _function(aws, "indexer", [{"Effect": "Allow", "Action": "s3:PutObject",
                                      "Resource": "arn:aws:s3:::media-b/*"}])
    aws.client("s3").create_bucket(Bucket="media-b")
    aws.client("s3").put_bucket_notification_configuration(Bucket="media-b", NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    events = aws.client("events")
    pattern = {"source": ["aws.s3"], "detail-type": [pattern_detail_type],
               "detail": {"bucket": {"name": [bucket_in_rule]}}}
    rule = events.put_rule(Name="on-upload", EventPattern=json.dumps(pattern))["RuleArn"]
    events.put_targets(Rule="on-upload", Targets=[{"Id": "indexer", "Arn": arn}])
    aws.client("lambda").add_permission(FunctionName=arn, StatementId="events-on-upload",
                                        Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                        SourceArn=rule)
    return arn


def test_an_eventbridge_rule_on_the_buckets_s3_events_closes_the_loop(aws, runtime, eventbridge_notifications):
    arn = _s3_eventbridge_rule(aws)
    expected = ("indexer → writes s3://media-b/ → bus default → rule on-upload → triggers indexer (2 hops; "
                "s3:PutObject allowed by writes")
    assert expected in _loops(_sweep(runtime))["indexer"]["message"]
    assert expected in _loops(handle_event(_tag_event(arn), runtime=runtime))["indexer"]["message"]


@pytest.mark.parametrize("detail_type, bucket", [("Object Deleted", "media-b"), ("Object Created", "other-b")])
def test_a_rule_that_cannot_match_what_the_function_writes_is_no_loop(aws, runtime, eventbridge_notifications,
                                                                     detail_type, bucket):
    _s3_eventbridge_rule(aws, detail_type, bucket)  # deletions (it only puts), or another bucket's events
    assert _loops(_sweep(runtime)) == {}


@pytest.mark.parametrize("source, loops", [("orders.service", True), ("aws.ec2", False)])
def test_events_the_function_puts_on_a_bus_loop_only_if_the_rule_can_match_them(aws, runtime, source, loops):
    events = aws.client("events")
    bus = events.create_event_bus(Name="orders")["EventBusArn"]
    arn = _function(aws, "order-handler", [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}])
    rule = events.put_rule(Name="new-order", EventBusName="orders",
                           EventPattern=json.dumps({"source": [source]}))["RuleArn"]
    events.put_targets(Rule="new-order", EventBusName="orders", Targets=[{"Id": "h", "Arn": arn}])
    aws.client("lambda").add_permission(FunctionName=arn, StatementId="events-new-order",
                                        Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                        SourceArn=rule)
    found = _loops(handle_event(_tag_event(arn), runtime=runtime))
    if loops:
        assert found["order-handler"]["message"].startswith(
            "order-handler → writes event bus orders → rule new-order → triggers order-handler (1 hop; "
            "events:PutEvents allowed by writes")
    else:  # PutEvents cannot send an aws.* source
        assert found == {}


def _ledger_pipe(aws, hops):
    """ledger table → (its stream) → pipe → queue ledger-q → [pipe → queue ledger-q2 →] the function."""
    arn = _function(aws, "ledger-worker", [{"Effect": "Allow", "Action": "dynamodb:PutItem",
                                            "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ledger"}])
    table = aws.client("dynamodb").create_table(
        TableName="ledger", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"]
    pipes, role = aws.client("pipes"), aws.execution_role("pipe-role")
    queue = _queue(aws, "ledger-q")
    pipes.create_pipe(Name="ledger-to-queue", Source=table["LatestStreamArn"], Target=queue, RoleArn=role)
    if hops == 3:
        second = _queue(aws, "ledger-q2")
        pipes.create_pipe(Name="requeue", Source=queue, Target=second, RoleArn=role)
        queue = second
    _mapping(aws, arn, queue)
    return arn


def test_a_dynamodb_stream_piped_to_the_functions_queue(aws, runtime):
    _ledger_pipe(aws, 2)
    assert ("ledger-worker → writes DynamoDB table ledger → pipe ledger-to-queue → queue ledger-q → triggers "
            "ledger-worker (2 hops; dynamodb:PutItem allowed by writes") in _loops(_sweep(runtime))["ledger-worker"][
        "message"]


def test_the_depth_is_bounded_at_three_deliveries(aws, runtime):
    _ledger_pipe(aws, 3)  # table → pipe → queue → pipe → queue → function: three deliveries, found
    assert "pipe ledger-to-queue → queue ledger-q → pipe requeue → queue ledger-q2" in _loops(_sweep(runtime))[
        "ledger-worker"]["message"]


def test_four_deliveries_are_beyond_the_bound(aws, runtime):
    # uploads-b → topic fanout → queue work → pipe → queue work-2 → the function: four deliveries
    arn = _s3_sns_sqs_chain(aws)
    aws.client("lambda").delete_event_source_mapping(
        UUID=aws.client("lambda").list_event_source_mappings(FunctionName="worker")["EventSourceMappings"][0]["UUID"])
    second = _queue(aws, "work-2")
    aws.client("pipes").create_pipe(Name="onward", Source=f"arn:aws:sqs:{REGION}:{ACCOUNT}:work", Target=second,
                                    RoleArn=aws.execution_role("pipe-role"))
    _mapping(aws, arn, second)
    assert _loops(_sweep(runtime)) == {}


def test_a_function_looping_through_several_hops_is_under_the_kill_switch(aws, runtime):
    _s3_sns_sqs_chain(aws)
    report = _sweep(runtime)
    (alarm,) = [f for f in report["findings"] if f["policy"] == "runaway-loop" and f["function"].endswith(":worker")]
    assert "(sensitive: recursive-trigger finding)" in alarm["message"]
    assert alarm["fix"]["action"] == "put-runaway-alarm"


def test_a_sweep_reads_rules_pipes_and_subscriptions_once(aws, runtime, calls, eventbridge_notifications):
    _s3_sns_sqs_chain(aws)
    _s3_eventbridge_rule(aws)
    for i in range(8):
        aws.function(f"plain-{i}")
    calls.clear()
    _sweep(runtime)
    reads = Counter(calls.calls)
    assert reads["events.ListEventBuses"] == 1 and reads["events.ListRules"] == 1  # one bus
    assert reads["events.ListTargetsByRule"] == 1 and reads["pipes.ListPipes"] == 1
    assert reads["sns.ListSubscriptions"] == 1 and reads["s3.GetBucketNotificationConfiguration"] == 2
    per_function = {"lambda.GetPolicy", "sqs.GetQueueAttributes", "sns.GetTopicAttributes", "events.DescribeRule"}
    assert not per_function & set(reads), reads


# -- IAM's own answer -----------------------------------------------------------------------------------------


def _simulator(runtime, stub_only, role, action, resource, result):
    stubber = stub_only(runtime.clients()("iam"), "SimulatePrincipalPolicy")
    stubber.add_response("simulate_principal_policy", {"EvaluationResults": [{
        "EvalActionName": action, "EvalResourceName": resource, **result}], "IsTruncated": False},
        {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": [resource]})
    return stubber


PROBE = "arn:aws:s3:::uploads-b/in/safetycatch-probe"  # a key the notification fires on, under the allowed keys


def test_iams_answer_decides_when_the_simulator_answers(aws, runtime, stub_only):
    _s3_sns_sqs_chain(aws)
    role = aws.client("iam").get_role(RoleName="worker-role")["Role"]["Arn"]
    stubber = _simulator(runtime, stub_only, role, "s3:PutObject", PROBE, {"EvalDecision": "allowed"})
    finding = _loops(_sweep(runtime))["worker"]
    stubber.assert_no_pending_responses()
    assert "(3 hops; s3:PutObject allowed by writes; decided by IAM's policy simulator)" in finding["message"]


def test_a_permissions_boundary_iam_applies_clears_the_loop(aws, runtime, stub_only):
    _s3_sns_sqs_chain(aws)
    iam = aws.client("iam")
    boundary = iam.create_policy(PolicyName="no-s3-writes", PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName="worker-role", PermissionsBoundary=boundary)
    role = iam.get_role(RoleName="worker-role")["Role"]["Arn"]
    stubber = _simulator(runtime, stub_only, role, "s3:PutObject", PROBE, {
        "EvalDecision": "implicitDeny", "PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": False}})
    assert _loops(_sweep(runtime)) == {}  # the local evaluator alone flags it (see the first test)
    stubber.assert_no_pending_responses()


def test_a_condition_the_simulator_cannot_evaluate_leaves_the_local_answer(aws, runtime, stub_only):
    conditional = [{**WRITE_BUCKET[0], "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]
    _s3_sns_sqs_chain(aws, conditional)
    role = aws.client("iam").get_role(RoleName="worker-role")["Role"]["Arn"]
    _simulator(runtime, stub_only, role, "s3:PutObject", PROBE, {
        "EvalDecision": "implicitDeny", "ResourceSpecificResults": [{
            "EvalResourceName": PROBE, "EvalResourceDecision": "implicitDeny",
            "MissingContextValues": ["aws:SourceIp"]}]})
    message = _loops(_sweep(runtime))["worker"]["message"]
    assert ("allowed by writes, under a condition; decided by the local policy evaluator: the simulator had no "
            "value for aws:SourceIp") in message


# -- the pure parts: event patterns and the simulator's probe resource ------------------------------------------


@pytest.mark.parametrize("pattern, event, expected", [
    ({"source": ["aws.s3"], "detail-type": ["Object Created"]}, {"source": "aws.s3", "detail-type": "Object Created"},
     True),
    ({"source": ["aws.s3"], "detail-type": ["Object Created"]}, {"source": "aws.s3", "detail-type": "Object Deleted"},
     False),
    ({"detail": {"bucket": {"name": [{"prefix": "media-"}]}}}, {"detail": {"bucket": {"name": "media-b"}}}, True),
    ({"detail": {"bucket": {"name": [{"anything-but": ["media-b"]}]}}}, {"detail": {"bucket": {"name": "media-b"}}},
     False),
    ({"detail": {"object": {"key": [{"suffix": ".jpg"}]}}}, {"source": "aws.s3"}, True),  # key unknown: may match
    ({"source": [{"prefix": "aws."}]}, {"source": "\x00custom"}, False),
    ({"source": [{"anything-but": "aws.s3"}]}, {"source": "\x00custom"}, True),
    ({"source": [{"wildcard": "orders.*"}]}, {"source": "\x00custom"}, True),
    ({"$or": [{"source": ["aws.ec2"]}, {"detail-type": ["Order Placed"]}]}, {"source": "\x00custom"}, True),
    ({"source": [{"exists": False}]}, {"source": "aws.s3"}, False),
])
def test_event_patterns_may_match(pattern, event, expected):
    assert may_match(pattern, event) is expected


_GLOBS = st.text(alphabet="ab*?/", max_size=8)


@given(_GLOBS, _GLOBS)
def test_the_probe_resource_matches_both_patterns_exactly_when_they_intersect(a, b):
    found = glob_witness(a, b)
    assert (found is not None) is glob_intersects(a, b)
    if found is not None:
        assert glob_match(a, found) and glob_match(b, found)
