"""VPC facts for vpc-no-egress: subnets, route tables, NAT gateways, VPC endpoints (once per VPC in play).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.core.model import FunctionSnapshot, NatGateway, NetworkFacts, Route, SubnetRouting, VpcEndpoint
from chalicelib.inventory.common import _ROUTE_TARGETS, EC2_FILTER_VALUES, ReadContext, Reader, VpcResources, _chunks


class NetworkReader(Reader):
    """VPC facts (vpc-no-egress): subnets, route tables, NAT gateways, endpoints."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._vpcs: dict[str, VpcResources] = {}

    def load_network(self, snapshots: list[FunctionSnapshot]) -> None:
        """The ``network`` facet: each VPC function's subnets, their routes, NAT gateways and endpoints."""
        subnets = self.ctx.shared.subnets
        self.describe_subnets({sid for s in snapshots for sid in s.subnet_ids})
        self._describe_vpcs({subnets[sid]["VpcId"] for s in snapshots for sid in s.subnet_ids if subnets.get(sid)})
        for snapshot in snapshots:
            snapshot.network = self._network_facts(snapshot)
            snapshot.loaded.add("network")

    def describe_subnets(self, subnet_ids: set[str]) -> None:
        """Read the subnets not known yet into the shared cache (``None``-safe: a missing one stays ``{}``)."""
        known = self.ctx.shared.subnets
        wanted = sorted(subnet_ids - set(known))
        paginator = self.clients("ec2").get_paginator("describe_subnets")
        for chunk in _chunks(wanted, EC2_FILTER_VALUES):
            for sid in chunk:
                known[sid] = {}
            for page in paginator.paginate(Filters=[{"Name": "subnet-id", "Values": chunk}]):
                for subnet in page.get("Subnets", []):
                    known[subnet["SubnetId"]] = subnet

    def _describe_vpcs(self, vpc_ids: set[str]) -> None:
        wanted = sorted(vpc_ids - set(self._vpcs))
        for chunk in _chunks(wanted, EC2_FILTER_VALUES):
            found: dict[str, VpcResources] = {vpc: VpcResources() for vpc in chunk}
            by_vpc = [{"Name": "vpc-id", "Values": chunk}]
            tables, nats, endpoints = self._vpc_resources(by_vpc)
            for table in tables:
                found.setdefault(table["VpcId"], VpcResources()).route_tables.append(table)
            for nat in nats:
                found.setdefault(nat.get("VpcId", ""), VpcResources()).nat_gateways.append(nat)
            for endpoint in endpoints:
                found.setdefault(endpoint.get("VpcId", ""), VpcResources()).endpoints.append(endpoint)
            self._vpcs.update(found)

    def _vpc_resources(self, by_vpc: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Route tables, NAT gateways and VPC endpoints of these VPCs: three reads at once."""
        ec2 = self.clients("ec2")
        return self.ctx.parallel("ec2", lambda read: read(), [
            lambda: [t for page in ec2.get_paginator("describe_route_tables").paginate(Filters=by_vpc)
                     for t in page.get("RouteTables", [])],
            lambda: [n for page in ec2.get_paginator("describe_nat_gateways").paginate(Filter=by_vpc)
                     for n in page.get("NatGateways", [])],
            lambda: [e for page in ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=by_vpc)
                     for e in page.get("VpcEndpoints", [])]])

    def _network_facts(self, snapshot: FunctionSnapshot) -> NetworkFacts:
        vpc, subnets, missing = snapshot.vpc_id, [], []
        for sid in snapshot.subnet_ids:
            subnet = self.ctx.shared.subnets.get(sid)
            if not subnet:
                missing.append(sid)
                continue
            vpc = subnet["VpcId"]
            table = _route_table_of(sid, self._vpcs.get(vpc, VpcResources()).route_tables)
            subnets.append(SubnetRouting(sid, vpc, table.get("RouteTableId", ""), _is_main(table), _routes(table)))
        resources = self._vpcs.get(vpc, VpcResources())
        nats = tuple(NatGateway(n["NatGatewayId"], n.get("State", ""), n.get("ConnectivityType") or "public",
                                _has_internet_route(_route_table_of(n.get("SubnetId", ""), resources.route_tables)))
                     for n in resources.nat_gateways)
        endpoints = tuple(VpcEndpoint(e["VpcEndpointId"], _service_short_name(e.get("ServiceName", "")),
                                      e.get("VpcEndpointType") or "Gateway", tuple(e.get("RouteTableIds") or ()))
                          for e in resources.endpoints if str(e.get("State", "available")).lower() == "available")
        return NetworkFacts(vpc, tuple(subnets), nats, endpoints, tuple(missing))




def _route_table_of(subnet_id: str, tables: list[dict[str, Any]]) -> dict[str, Any]:
    """The subnet's explicitly associated route table, else the VPC's main table."""
    for table in tables:
        if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
            return table
    return next((t for t in tables if _is_main(t)), {})


def _is_main(table: dict[str, Any]) -> bool:
    return any(a.get("Main") for a in table.get("Associations", []))


def _routes(table: dict[str, Any]) -> tuple[Route, ...]:
    routes = []
    for route in table.get("Routes", []):
        destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock") or \
            route.get("DestinationPrefixListId") or ""
        target = next((str(route[k]) for k in _ROUTE_TARGETS if route.get(k)), "")
        routes.append(Route(destination, target, route.get("State", "active")))
    return tuple(routes)


def _has_internet_route(table: dict[str, Any]) -> bool:
    return any(r.destination == "0.0.0.0/0" and r.target.startswith("igw-") and r.state == "active"
               for r in _routes(table))


def _service_short_name(service: str) -> str:
    """``com.amazonaws.us-east-1.secretsmanager`` → ``secretsmanager``."""
    return re.sub(r"^(?:[a-z0-9-]+\.)*?(?:com\.amazonaws|amazonaws\.com)\.(?:[a-z]{2}(?:-[a-z]+)+-\d\.)?", "", service)

