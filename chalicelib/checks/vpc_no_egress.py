"""vpc-no-egress (footgun 1): a VPC function with no internet egress from (some of) its subnets.

A function attached to a VPC gets ENIs with private addresses only. It reaches the internet - and every
AWS API without a VPC endpoint - only through a default route (0.0.0.0/0) to a NAT gateway, a transit
gateway, a VPN gateway or a network appliance (ENI / instance). A default route to an internet gateway does
NOT give a Lambda function internet: its ENIs have no public IP. Each subnet uses its explicitly associated
route table, else the VPC's main table. A NAT gateway that is deleted, private (ConnectivityType=private) or
without an internet route of its own gives no egress either.

The message names the subnets without egress, the VPC endpoints present (the AWS services that stay
reachable; a gateway endpoint only serves the route tables it is attached to) and the ways out: a NAT
gateway, VPC endpoints for the AWS services the function calls (cheaper than NAT), or dropping the VPC
configuration when the function needs no private resource.

Many functions are isolated on purpose (an in-VPC database, EFS, VPC endpoints, peering). So the check asks
whether the function needs egress: the AWS services its execution role lets it call (CloudWatch Logs, X-Ray
and the ENI permissions are Lambda's own, outside the VPC) that have no VPC endpoint there. It names them;
with none, the finding is ``low`` and says the subnets matter only if the function must reach the internet.
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import (
    UNREAD_POLICY,
    AccountFacts,
    Finding,
    FunctionSnapshot,
    NatGateway,
    NetworkFacts,
    SubnetRouting,
)

DEFAULT_ROUTE = "0.0.0.0/0"


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    """Only functions with a VPC configuration (subnets) are in scope."""
    return bool(snapshot.subnet_ids)


def subnet_egress(subnet: SubnetRouting, nats: dict[str, NatGateway], params: Params) -> tuple[bool, str]:
    """Whether the subnet's default route leads to the internet, and why not.

    Example:
        >>> from chalicelib.core.model import Route
        >>> s = SubnetRouting("subnet-1", "vpc-1", "rtb-1", False, (Route(DEFAULT_ROUTE, "igw-9"),))
        >>> subnet_egress(s, {}, {"vpn_is_egress": True})
        (False, 'rtb-1: 0.0.0.0/0 → igw-9, an internet gateway (Lambda ENIs have no public IP)')
    """
    where = f"{subnet.route_table_id}{' (main)' if subnet.main else ''}"
    route = next((r for r in subnet.routes if r.destination == DEFAULT_ROUTE), None)
    if route is None:
        return False, f"{where}: no 0.0.0.0/0 route"
    target = route.target
    if route.state != "active":
        return False, f"{where}: 0.0.0.0/0 → {target} is a blackhole"
    if target.startswith("igw-"):
        return False, f"{where}: 0.0.0.0/0 → {target}, an internet gateway (Lambda ENIs have no public IP)"
    if target.startswith("pcx-"):
        return False, f"{where}: 0.0.0.0/0 → {target}, a VPC peering (no transit to the internet)"
    if target.startswith("vgw-") and not params["vpn_is_egress"]:
        return False, f"{where}: 0.0.0.0/0 → {target}, a VPN gateway (vpn_is_egress is off)"
    if target.startswith("nat-"):
        nat = nats.get(target)
        if nat is None or nat.state not in ("available", "pending"):
            return False, f"{where}: 0.0.0.0/0 → {target}, a NAT gateway that is {nat.state if nat else 'gone'}"
        if nat.connectivity == "private":
            return False, f"{where}: 0.0.0.0/0 → {target}, a private NAT gateway (no internet)"
        if not nat.internet_route:
            return False, f"{where}: 0.0.0.0/0 → {target}, a NAT gateway whose own subnet has no internet gateway route"
    return True, f"{where}: 0.0.0.0/0 → {target}"


def reachable_services(network: NetworkFacts, subnets: list[SubnetRouting]) -> list[str]:
    """AWS services reachable through VPC endpoints from ``subnets`` (gateway endpoints per route table)."""
    tables = {s.route_table_id for s in subnets}
    names = set()
    for endpoint in network.endpoints:
        if endpoint.kind == "Gateway" and tables - set(endpoint.route_table_ids):
            continue
        if endpoint.kind in ("Gateway", "Interface"):
            names.add(f"{endpoint.service} (gateway)" if endpoint.kind == "Gateway" else endpoint.service)
    return sorted(names)


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding when a subnet of the function (any, or all with ``flag_partial`` off) has no egress.

    Example:
        >>> from chalicelib.core.model import FunctionRef, Route
        >>> s = SubnetRouting("subnet-1", "vpc-1", "rtb-1", True, (Route("10.0.0.0/16", "local"),))
        >>> fn = FunctionSnapshot(FunctionRef("orders-api", "123456789012", "us-east-1"), subnet_ids=("subnet-1",),
        ...                       network=NetworkFacts("vpc-1", (s,)))
        >>> evaluate(fn, {"flag_partial": True, "vpn_is_egress": True}, AccountFacts())[0].evidence["no_egress"]
        ['subnet-1']
    """
    network = snapshot.network
    if network is None or not network.subnets:
        return []
    nats = {n.id: n for n in network.nat_gateways}
    verdicts = [(s, *subnet_egress(s, nats, params)) for s in network.subnets]
    closed = [(s, why) for s, ok, why in verdicts if not ok]
    if not closed or (len(closed) < len(verdicts) and not params["flag_partial"]):
        return []
    shown = "; ".join(f"{s.subnet_id} ({why})" for s, why in closed[:3])
    more = f" and {len(closed) - 3} more" if len(closed) > 3 else ""
    if len(closed) == len(verdicts):
        head = (f"VPC function in {network.vpc_id} has no internet egress: {shown}{more}. Calls to the internet "
                f"and to AWS APIs without a VPC endpoint time out.")
    else:
        head = (f"{len(closed)} of {len(verdicts)} subnets of this VPC function ({network.vpc_id}) have no internet "
                f"egress: {shown}{more}. Invocations placed there time out on outbound calls while the others work.")
    services = reachable_services(network, [s for s, _ in closed])
    reach = (f" Reachable through VPC endpoints: {', '.join(services)}." if services
             else " No VPC endpoint either: no AWS service is reachable from there.")
    needed = unreachable_needs(snapshot, services)
    if needed:
        need = (f" Its role lets it call {', '.join(needed)} with no VPC endpoint there: those calls time out."
                if needed != ["*"] else " What its role lets it call is not all known (or is any AWS service).")
        advice = (" Route 0.0.0.0/0 to a NAT gateway, add VPC endpoints for the AWS services it calls (cheaper "
                  "than NAT), or drop the VPC configuration if it needs no private resources.")
    else:
        need = (" Its role lets it call no AWS service that lacks a VPC endpoint there, so this matters only if it "
                "must reach the internet (a third-party API).")
        advice = " If it must, route 0.0.0.0/0 to a NAT gateway; if it is isolated on purpose, exempt it."
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="" if needed else "low",
        message=head + reach + need + advice,
        evidence={"vpc": network.vpc_id, "no_egress": [s.subnet_id for s, _ in closed],
                  "subnets": len(verdicts), "endpoints": services, "needs": needed},
    )]


LAMBDAS_OWN = ("logs", "xray", "ec2")  # Lambda ships logs and traces and manages the ENIs itself, outside the VPC
MOUNTS = ("elasticfilesystem", "s3files")  # Client* actions authorise a mount, made to a mount target in the VPC


def unreachable_needs(snapshot: FunctionSnapshot, endpoints: list[str]) -> list[str]:
    """The AWS services the execution role allows (service prefixes of its Allow statements) that no VPC
    endpoint of ``endpoints`` serves; ``["*"]`` for a wildcard action.

    Example:
        >>> from chalicelib.core.model import FunctionRef, RolePolicy
        >>> doc = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "sqs:SendMessage", "logs:*"],
        ...                       "Resource": "*"}]}
        >>> fn = FunctionSnapshot(FunctionRef("f", "1", "us-east-1"), role_policies=(RolePolicy("p", "inline", doc),),
        ...                       loaded={"role_policies"})
        >>> unreachable_needs(fn, ["s3 (gateway)"])
        ['sqs']
    """
    served = {e.split(" ", 1)[0] for e in endpoints}
    needed: set[str] = set()
    if "role_policies" not in snapshot.loaded or any(p.source == UNREAD_POLICY for p in snapshot.role_policies):
        return ["*"]  # what it may call is unknown: assume it needs egress
    for policy in snapshot.role_policies:
        statements = policy.document.get("Statement", []) if isinstance(policy.document, dict) else []
        for statement in statements if isinstance(statements, list) else [statements]:
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            for action in actions if isinstance(actions, list) else [actions]:
                service, _, name = str(action).lower().partition(":")
                if service == "*":
                    return ["*"]
                if service not in LAMBDAS_OWN and not (service in MOUNTS and name.startswith("client")):
                    needed.add(service)
    return sorted(needed - served)


CHECK = Check(
    id="vpc-no-egress",
    footgun="1",
    title="VPC function with no internet egress path",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="high",
    evaluate=evaluate,
    params=(
        Param("flag_partial", bool, True, "Also flag a function when only some of its subnets lack egress "
              "(invocations there fail intermittently)."),
        Param("vpn_is_egress", bool, True, "Count a default route to a VPN gateway as egress (on-premises "
              "routes onward)."),
    ),
    needs=frozenset({"network"}),
    finding_needs=frozenset({"role_policies"}),  # read for the functions without egress only
    in_scope=in_scope,
    read_permissions=("ec2:DescribeSubnets", "ec2:DescribeRouteTables", "ec2:DescribeNatGateways",
                      "ec2:DescribeVpcEndpoints", "lambda:ListFunctions"),
    triggers=frozenset(("UpdateFunctionConfiguration:vpcConfig",
                        # routing around the function (EC2): the route to a NAT, the NAT's own way out
                        "CreateRoute", "ReplaceRoute", "DeleteRoute", "DeleteNatGateway", "AssociateRouteTable",
                        "DisassociateRouteTable", "ReplaceRouteTableAssociation", "DetachInternetGateway",
                        "DeleteInternetGateway")),
)
