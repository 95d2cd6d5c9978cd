"""Loop edges and egress heard on the event path: SNS Subscribe, EventBridge PutRule / PutTargets, Pipes
CreatePipe / UpdatePipe re-evaluate the functions they concern (recursive-trigger); DetachInternetGateway /
DeleteInternetGateway re-evaluate vpc-no-egress for the functions in that VPC. Each from a CloudTrail record
shaped as tests/events/recorded/ holds it."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call

ACCOUNT, REGION = "123456789012", "us-east-1"


def _function(aws, name: str, statements: list[dict]) -> str:
    role = aws.execution_role(f"{name}-role", {"writes": {"Statement": statements}})
    return str(aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": aws._zip},
        Timeout=10, MemorySize=512)["FunctionArn"])


def _allow(service: str, action: str, resource: str, source: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"}, "Action": action,
        "Resource": resource, "Condition": {"ArnLike": {"aws:SourceArn": source}}}]})


def _loop(report: dict, function: str) -> dict:
    found = [f for f in report["findings"] if f["policy"] == "recursive-trigger" and f["function"] == function]
    assert len(found) == 1, (report["findings"], report["errors"])
    (finding,) = found
    return finding


# -- SNS ---------------------------------------------------------------------------------------------------


def test_subscribing_a_function_to_the_topic_it_publishes_to_is_heard(aws, runtime):
    topic = aws.client("sns").create_topic(Name="alerts")["TopicArn"]
    arn = _function(aws, "notifier", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}])
    aws.client("lambda").add_permission(FunctionName=arn, StatementId="sns-alerts", Action="lambda:InvokeFunction",
                                        Principal="sns.amazonaws.com", SourceArn=topic)
    subscription = aws.client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)["SubscriptionArn"]
    event = api_call("Subscribe", {"topicArn": topic, "protocol": "lambda", "endpoint": arn},
                     {"subscriptionArn": subscription}, service="sns")
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and report["functions"] == [arn]
    finding = _loop(report, arn)
    assert finding["outcome"] == "pending-approval"
    assert finding["message"].startswith("notifier → writes SNS topic alerts → triggers notifier")


def test_subscribing_the_functions_queue_to_its_topic_re_evaluates_the_queue_consumer(aws, runtime):
    topic = aws.client("sns").create_topic(Name="fanout")["TopicArn"]
    arn = _function(aws, "worker", [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}])
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:work"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _allow("sns", "sqs:SendMessage", queue, topic)})
    aws.client("lambda").create_event_source_mapping(EventSourceArn=queue, FunctionName=arn.rsplit(":", 1)[-1])
    subscription = aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)["SubscriptionArn"]
    report = handle_event(api_call("Subscribe", {"topicArn": topic, "protocol": "sqs", "endpoint": queue},
                                   {"subscriptionArn": subscription}, service="sns"), runtime=runtime)
    assert report["functions"] == [arn]
    assert "worker → writes SNS topic fanout → queue work → triggers worker" in _loop(report, arn)["message"]


def test_an_email_subscription_concerns_no_function(aws, runtime, calls):
    report = handle_event(api_call("Subscribe", {"topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts",
                                                 "protocol": "email", "endpoint": "ops@example.com"},
                                   {"subscriptionArn": "pending confirmation"}, service="sns"), runtime=runtime)
    assert report["skipped"] == "the subscription delivers to no function or queue"
    assert calls.calls == []


# -- EventBridge ---------------------------------------------------------------------------------------------


def _order_bus(aws) -> tuple[str, str]:
    events = aws.client("events")
    bus = events.create_event_bus(Name="orders")["EventBusArn"]
    arn = _function(aws, "order-handler", [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}])
    return bus, arn


def _rule(aws, arn: str) -> str:
    events = aws.client("events")
    rule = events.put_rule(Name="new-order", EventBusName="orders",
                           EventPattern=json.dumps({"source": ["orders.service"]}))["RuleArn"]
    events.put_targets(Rule="new-order", EventBusName="orders", Targets=[{"Id": "handler", "Arn": arn}])
    aws.client("lambda").add_permission(FunctionName=arn, StatementId="events-new-order",
                                        Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                                        SourceArn=rule)
    return str(rule)


def test_put_targets_pointing_a_rule_at_the_function_that_feeds_its_bus_is_heard(aws, runtime):
    _, arn = _order_bus(aws)
    rule = _rule(aws, arn)
    event = api_call("PutTargets", {"rule": "new-order", "eventBusName": "orders",
                                    "targets": [{"id": "handler", "arn": arn}]},
                     {"failedEntryCount": 0, "failedEntries": []}, service="events")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn]
    assert _loop(report, arn)["message"].startswith(
        "order-handler → writes event bus orders → rule new-order → triggers order-handler")
    assert rule.endswith("rule/orders/new-order")


def test_put_rule_widening_a_pattern_reads_the_rules_targets(aws, runtime):
    _, arn = _order_bus(aws)
    rule = _rule(aws, arn)
    event = api_call("PutRule", {"name": "new-order", "eventBusName": "orders", "state": "ENABLED",
                                 "eventPattern": json.dumps({"source": ["orders.service"]})},
                     {"ruleArn": rule}, service="events")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn]
    assert _loop(report, arn)["outcome"] == "pending-approval"


# -- Pipes ---------------------------------------------------------------------------------------------------


def _ledger(aws) -> tuple[str, str, str]:
    """ledger-worker consumes queue ledger-q and writes table ledger, whose stream a pipe may feed to the queue."""
    arn = _function(aws, "ledger-worker", [{"Effect": "Allow", "Action": "dynamodb:PutItem",
                                            "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ledger"}])
    stream = aws.client("dynamodb").create_table(
        TableName="ledger", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})["TableDescription"][
        "LatestStreamArn"]
    aws.client("sqs").create_queue(QueueName="ledger-q")
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ledger-q"
    aws.client("lambda").create_event_source_mapping(EventSourceArn=queue, FunctionName=arn.rsplit(":", 1)[-1])
    return arn, stream, queue


def test_create_pipe_from_the_functions_table_to_its_queue_is_heard(aws, runtime):
    arn, stream, queue = _ledger(aws)
    role = aws.execution_role("pipe-role")
    aws.client("pipes").create_pipe(Name="ledger-to-queue", Source=stream, Target=queue, RoleArn=role)
    event = api_call("CreatePipe", {"name": "ledger-to-queue", "source": stream, "target": queue, "roleArn": role,
                                    "desiredState": "RUNNING"},
                     {"name": "ledger-to-queue", "arn": f"arn:aws:pipes:{REGION}:{ACCOUNT}:pipe/ledger-to-queue",
                      "desiredState": "RUNNING", "currentState": "CREATING"}, service="pipes")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn]
    assert "pipe ledger-to-queue → queue ledger-q → triggers ledger-worker" in _loop(report, arn)["message"]


def test_update_pipe_without_a_target_in_the_request_looks_the_pipe_up(aws, runtime):
    arn, stream, queue = _ledger(aws)
    role = aws.execution_role("pipe-role")
    aws.client("pipes").create_pipe(Name="ledger-to-queue", Source=stream, Target=queue, RoleArn=role)
    event = api_call("UpdatePipe", {"name": "ledger-to-queue", "desiredState": "RUNNING", "roleArn": role},
                     {"name": "ledger-to-queue", "desiredState": "RUNNING", "currentState": "UPDATING"},
                     service="pipes")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn]
    assert _loop(report, arn)["outcome"] == "pending-approval"


# -- egress: internet gateways ---------------------------------------------------------------------------------


@pytest.fixture
def blackhole_routes(runtime):
    """AWS marks a route ``blackhole`` when its target "isn't available (for example, the specified gateway isn't
    attached to the VPC)" (EC2 API reference, Route.State). moto keeps such routes ``active``: on
    DescribeRouteTables only, a route to an internet gateway not attached to the table's VPC is answered as AWS
    answers it. Everything else is moto's own answer."""
    from moto.ec2.models import ec2_backends

    def complete(parsed, **_):
        gateways = ec2_backends[ACCOUNT][REGION].internet_gateways
        attached = {g.id: g.vpc.id for g in gateways.values() if g.vpc is not None}
        for table in parsed.get("RouteTables", []):
            for route in table.get("Routes", []):
                gateway = route.get("GatewayId", "")
                if gateway.startswith("igw-") and attached.get(gateway) != table.get("VpcId"):
                    route["State"] = "blackhole"

    for session in {runtime.session, runtime.clients().session}:
        session.events.register("after-call.ec2.DescribeRouteTables", complete)


def _vpc_function(aws, name: str, subnets: list[str]) -> str:
    return aws.function(name, VpcConfig={"SubnetIds": subnets, "SecurityGroupIds": []})


def _igw(aws, vpc: str) -> str:
    (gateway,) = aws.client("ec2").describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    return str(gateway["InternetGatewayId"])


def test_detaching_the_internet_gateway_behind_a_nat_is_heard_for_that_vpcs_functions(aws, runtime,
                                                                                      blackhole_routes):
    network, other = aws.vpc(egress="nat"), aws.vpc(egress="nat")
    arn = _vpc_function(aws, "orders-api", network["subnets"])
    _vpc_function(aws, "elsewhere", other["subnets"])
    gateway = _igw(aws, network["vpc"])
    aws.client("ec2").detach_internet_gateway(InternetGatewayId=gateway, VpcId=network["vpc"])
    event = api_call("DetachInternetGateway", {"internetGatewayId": gateway, "vpcId": network["vpc"]},
                     {"requestId": "4a4b7c6f-0d1e-4f7a-9c3b-2e8f1a6d5b90", "_return": True}, service="ec2")
    report = handle_event(event, runtime=runtime)
    assert report["functions"] == [arn], "only the functions of the detached VPC"
    (finding,) = report["findings"]
    assert finding["policy"] == "vpc-no-egress" and "NAT gateway whose own subnet has no internet gateway route" in \
        finding["message"]


def test_deleting_the_internet_gateway_re_evaluates_the_vpc_functions(aws, runtime, blackhole_routes):
    network = aws.vpc(egress="nat")
    arn = _vpc_function(aws, "orders-api", network["subnets"])
    ec2 = aws.client("ec2")
    gateway = _igw(aws, network["vpc"])
    ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=network["vpc"])
    ec2.delete_internet_gateway(InternetGatewayId=gateway)
    report = handle_event(api_call("DeleteInternetGateway", {"internetGatewayId": gateway},
                                   {"requestId": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "_return": True},
                                   service="ec2"), runtime=runtime)
    assert report["functions"] == [arn]
    assert [f["policy"] for f in report["findings"]] == ["vpc-no-egress"]


def test_a_nat_with_its_gateway_attached_is_no_finding(aws, runtime, blackhole_routes):
    network = aws.vpc(egress="nat")
    arn = _vpc_function(aws, "orders-api", network["subnets"])
    report = handle_event(api_call("DetachInternetGateway", {"internetGatewayId": "igw-0a1b2c3d4e5f60718",
                                                             "vpcId": network["vpc"]}, {"_return": True},
                                   service="ec2"), runtime=runtime)
    assert report["functions"] == [arn] and report["findings"] == []
