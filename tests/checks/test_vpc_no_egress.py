"""vpc-no-egress on moto: which routes give a Lambda function internet, and re-evaluation on routing events."""

from __future__ import annotations

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call

READS_ORDERS = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem", "logs:PutLogEvents"],
                               "Resource": "*"}]}


def _vpc_function(aws, name, network, subnets=None, policy=READS_ORDERS):
    """A VPC function whose role calls DynamoDB (so it needs egress or an endpoint; issue 25 asks the role)."""
    if not hasattr(aws, "_vpc_role"):
        aws._vpc_role = aws.execution_role("vpc-fn-role", {"reads-orders": policy})
    response = aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=aws._vpc_role, Handler="app.handler",
        Code={"ZipFile": aws._zip}, VpcConfig={"SubnetIds": subnets or network["subnets"], "SecurityGroupIds": []})
    return response["FunctionArn"]


def _scan(runtime, policy="vpc-no-egress"):
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False).to_json()
    assert report["errors"] == []
    return {f["function"].rsplit(":", 1)[-1]: f for f in report["findings"] if f["policy"] == policy}


def test_igw_nat_private_nat_and_no_route(aws, runtime):
    for egress in ("none", "igw", "nat", "nat-private"):
        _vpc_function(aws, f"fn-{egress}", aws.vpc(egress))
    aws.function("not-in-vpc")
    found = _scan(runtime)
    assert set(found) == {"fn-none", "fn-igw", "fn-nat-private"}
    assert "internet gateway (Lambda ENIs have no public IP)" in found["fn-igw"]["message"]
    assert "private NAT gateway" in found["fn-nat-private"]["message"]
    assert "no 0.0.0.0/0 route" in found["fn-none"]["message"]
    assert all(f["mode"] == "notify" and f["severity"] == "high" and f["fix"] is None for f in found.values())


def test_main_route_table_is_used_without_an_explicit_association(aws, runtime):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    aws.function("main-table", VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": []})
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    assert "(main)" in _scan(runtime)["main-table"]["message"]
    tgw = "tgw-0123456789abcdef0"
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)
    assert _scan(runtime) == {}


def test_deleted_nat_gateway_gives_no_egress(aws, runtime):
    network = aws.vpc("nat")
    _vpc_function(aws, "worker", network)
    assert _scan(runtime) == {}
    aws.client("ec2").delete_nat_gateway(NatGatewayId=network["nat"])  # moto keeps the route "active"
    assert "a NAT gateway that is deleted" in _scan(runtime)["worker"]["message"]


def test_partial_egress_and_the_flag_partial_param(aws, make_runtime, tmp_path):
    good = aws.vpc("nat", subnets=1)
    ec2 = aws.client("ec2")
    # One function over a subnet with egress and a second subnet of the same VPC whose table has none.
    extra = ec2.create_subnet(VpcId=good["vpc"], CidrBlock="10.0.50.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=good["vpc"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=extra)
    _vpc_function(aws, "split", good, subnets=[good["subnets"][0], extra])
    found = _scan(make_runtime())
    assert "1 of 2 subnets" in found["split"]["message"] and extra in found["split"]["message"]
    (tmp_path / "settings.yaml").write_text("{}\n")
    (tmp_path / "vpc-no-egress.yaml").write_text("params:\n  flag_partial: false\n")
    assert _scan(make_runtime(policies=tmp_path)) == {}


def test_endpoints_are_listed_and_gateway_endpoints_only_count_where_attached(aws, runtime):
    network = aws.vpc("none", endpoints=("s3", "secretsmanager", "sqs"))
    _vpc_function(aws, "isolated", network)
    message = _scan(runtime)["isolated"]["message"]
    assert "Reachable through VPC endpoints: s3 (gateway), secretsmanager, sqs." in message
    assert "VPC endpoints for the AWS services it calls (cheaper than NAT)" in message
    assert "drop the VPC configuration" in message

    other = aws.vpc("none")
    aws.client("ec2").create_vpc_endpoint(VpcId=other["vpc"], ServiceName="com.amazonaws.us-east-1.dynamodb",
                                          VpcEndpointType="Gateway", RouteTableIds=[])
    _vpc_function(aws, "unattached", other)
    assert "No VPC endpoint either" in _scan(runtime)["unattached"]["message"]


def test_create_route_event_re_evaluates_every_function_of_the_vpc(aws, runtime, event):
    network = aws.vpc("nat")
    for name in ("example-fn", "orders-worker"):
        _vpc_function(aws, name, network)
    _vpc_function(aws, "other-vpc", aws.vpc("none"))
    aws.function("orders-lambda-no-vpc", timeout=30)
    ec2 = aws.client("ec2")
    # alice points the default route at the internet gateway instead of the NAT (CreateRoute after a delete)
    igw = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [network["vpc"]]}])
    igw_id = igw["InternetGateways"][0]["InternetGatewayId"]
    ec2.delete_route(RouteTableId=network["route_table"], DestinationCidrBlock="0.0.0.0/0")
    ec2.create_route(RouteTableId=network["route_table"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    recorded = event("ec2-CreateRoute")
    request = recorded["detail"]["requestParameters"]
    request["routeTableId"] = network["route_table"]
    del request["natGatewayId"]
    request["gatewayId"] = igw_id
    report = handle_event(recorded, runtime=runtime)
    assert report["skipped"] is None
    assert sorted(f.rsplit(":", 1)[-1] for f in report["functions"]) == ["example-fn", "orders-worker"]
    assert report["function"] == report["functions"][0]
    assert {f["policy"] for f in report["findings"]} == {"vpc-no-egress"}  # only the policy a route can affect
    assert [f["outcome"] for f in report["findings"]] == ["reported", "reported"]
    assert f"0.0.0.0/0 → {igw_id}, an internet gateway" in report["findings"][0]["message"]


def test_create_route_to_a_nat_leaves_nothing_to_report(aws, runtime, event):
    network = aws.vpc("nat")
    _vpc_function(aws, "example-fn", network)
    aws.function("payments", timeout=60, tags={"critical": "true"})  # other policies are not re-run
    recorded = event("ec2-CreateRoute")
    recorded["detail"]["requestParameters"].update(routeTableId=network["route_table"], natGatewayId=network["nat"])
    report = handle_event(recorded, runtime=runtime)
    assert report["skipped"] is None and len(report["functions"]) == 1 and report["findings"] == []


def test_nat_gateway_deleted_event(aws, runtime, event):
    network = aws.vpc("nat")
    _vpc_function(aws, "example-fn", network)
    aws.client("ec2").delete_nat_gateway(NatGatewayId=network["nat"])
    recorded = event("ec2-DeleteNatGateway")
    wrapped = recorded["detail"]["requestParameters"]["DeleteNatGatewayRequest"]
    wrapped["NatGatewayId"] = network["nat"]
    report = handle_event(recorded, runtime=runtime)
    (finding,) = report["findings"]
    assert finding["policy"] == "vpc-no-egress" and network["nat"] in finding["message"]


def test_disassociation_re_evaluates_all_vpc_functions_and_unknown_ids_affect_none(aws, runtime):
    network = aws.vpc("igw")
    _vpc_function(aws, "a", network)
    report = handle_event(api_call("DisassociateRouteTable", {"associationId": "rtbassoc-0f1e2d3c4b5a69788"},
                                   {"requestId": "x", "_return": True}, service="ec2"), runtime=runtime)
    assert [f["policy"] for f in report["findings"]] == ["vpc-no-egress"]
    report = handle_event(api_call("CreateRoute", {"routeTableId": "rtb-00000000000000000",
                                                   "destinationCidrBlock": "0.0.0.0/0"}, service="ec2"),
                          runtime=runtime)
    assert report["skipped"] == "no function is affected by this change" and report["functions"] == []


def test_ec2_events_without_ids_are_skipped(runtime, aws):
    report = handle_event(api_call("CreateRoute", {"destinationCidrBlock": "0.0.0.0/0"}, service="ec2"),
                          runtime=runtime)
    assert report["skipped"] == "no route table id in the event"
    report = handle_event(api_call("CreateRouteTable", {"vpcId": "vpc-1"}, service="ec2"), runtime=runtime)
    assert report["skipped"].startswith("not a change safetycatch watches")


def test_the_role_says_whether_the_function_needs_egress(aws, runtime):
    """Issue 25: functions isolated on purpose (an in-VPC store, VPC endpoints for all they call) are low and told
    the subnets matter only if they must reach the internet; a service without an endpoint is named."""
    network = aws.vpc("none", endpoints=("s3", "secretsmanager"))
    calls = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "secretsmanager:GetSecretValue",
                                                          "ec2:CreateNetworkInterface", "xray:PutTraceSegments",
                                                          "elasticfilesystem:ClientMount"],
                            "Resource": "*"}]}
    _vpc_function(aws, "isolated", network, policy=calls)
    finding = _scan(runtime)["isolated"]
    assert finding["severity"] == "low" and "only if it must reach the internet" in finding["message"]

    needy = aws.execution_role("needy-role", {"p": {"Statement": [{"Effect": "Allow", "Action": [
        "s3:GetObject", "sqs:SendMessage", "states:StartExecution"], "Resource": "*"}]}})
    aws.client("lambda").create_function(
        FunctionName="needy", Runtime="python3.12", Role=needy, Handler="app.handler", Code={"ZipFile": aws._zip},
        VpcConfig={"SubnetIds": network["subnets"], "SecurityGroupIds": []})
    finding = _scan(runtime)["needy"]
    assert finding["severity"] == "high"
    assert "Its role lets it call sqs, states with no VPC endpoint there" in finding["message"]
