"""What EventBridge delivers, and to what: rules (an event pattern on a bus, to functions, queues, topics, buses
and streams) and pipes (from a queue or a stream to a target).

A sweep reads every rule once per run (ListEventBuses, ListRules per bus, ListTargetsByRule per enabled
rule with an event pattern; scheduled rules are not triggered by writes) and every pipe with one ListPipes. An
event reads only the rules a resource policy names (DescribeRule + ListTargetsByRule each).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.
moto implements ListEventBuses, ListRules, DescribeRule, ListTargetsByRule and ListPipes (verified with moto
5.2.5 against botocore's models); the tests build real rules and pipes in it.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_not_found, is_transient
from chalicelib.core.model import Trigger
from chalicelib.inventory.common import ReadContext, Reader, _unqualified

# arn:aws:events:<region>:<account>:rule/[<bus>/]<name>
_RULE_ARN = re.compile(r"^arn:aws[a-z-]*:events:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):rule/"
                       r"(?:(?P<bus>[^/]+)/)?(?P<name>[^/]+)$")


class EventBridgeReader(Reader):
    """EventBridge rules and pipes as deliveries (recursive-trigger's loop paths)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._rules: dict[str, list[Trigger]] = {}  # rule ARN -> its deliveries
        self.gaps: set[str] = set()  # what could not be read

    def rule_deliveries(self, rule_arns: set[str] | None) -> list[Trigger]:
        """The deliveries of the rules named (rule ARNs) or, with None, of every rule of the region."""
        if rule_arns is None:
            return self.ctx.once("all_rules", self._read_all_rules)
        found = []
        for arn in sorted(rule_arns):
            if arn not in self._rules:
                self._rules[arn] = self._read_rule(arn)
            found.extend(self._rules[arn])
        return found

    def warm(self) -> None:
        """Read every rule and pipe of the region, once a run."""
        self.rule_deliveries(None)
        self.pipe_deliveries()

    def _read_all_rules(self) -> list[Trigger]:
        events = self.clients("events")
        buses = [b for page in _pages(events, "list_event_buses", "EventBuses", {}) for b in page]
        rules = [(r, bus["Arn"]) for bus in buses
                 for page in _pages(events, "list_rules", "Rules", {"EventBusName": bus["Name"]}) for r in page]
        for rule, hops in zip(rules, self.ctx.parallel("events", lambda item: self._rule_targets(*item), rules),
                              strict=True):
            self._rules[rule[0]["Arn"]] = hops
        return [t for hops in self._rules.values() for t in hops]

    def _read_rule(self, arn: str) -> list[Trigger]:
        match = _RULE_ARN.match(arn)
        if not match or match["region"] != self.region:
            return []
        bus = match["bus"] or "default"
        try:
            rule = self.clients("events").describe_rule(Name=match["name"], EventBusName=bus)
        except ClientError as exc:
            if is_not_found(exc):
                return []
            raise
        return self._rule_targets(rule, f"arn:aws:events:{self.region}:{match['account']}:event-bus/{bus}")

    def _rule_targets(self, rule: dict[str, Any], bus_arn: str) -> list[Trigger]:
        if rule.get("State") not in ("ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS") \
                or not rule.get("EventPattern"):
            return []
        params = {"Rule": rule["Name"], "EventBusName": rule.get("EventBusName") or bus_arn.rsplit("/", 1)[-1]}
        targets = [t for page in _pages(self.clients("events"), "list_targets_by_rule", "Targets", params)
                   for t in page]
        return [Trigger("events", bus_arn, id=str(rule.get("Arn", "")), pattern=str(rule["EventPattern"]),
                        target_arn=_target(str(t.get("Arn", "")))) for t in targets]

    def pipe_deliveries(self) -> list[Trigger]:
        """Every running pipe of the region (one ListPipes, once per run)."""
        return self.ctx.once("pipes", self._read_pipes)

    def _read_pipes(self) -> list[Trigger]:
        try:
            pipes = [p for page in _pages(self.clients("pipes"), "list_pipes", "Pipes", {}) for p in page]
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            self.gaps.add(f"EventBridge pipes ({error_code(exc) or 'error'})")
            pipes = []
        return [Trigger("pipe", str(p.get("Source", "")).split("/consumer/", 1)[0], id=str(p.get("Arn", "")),
                        target_arn=_target(str(p["Target"])))
                for p in pipes if p.get("Target") and p.get("DesiredState", "RUNNING") == "RUNNING"]


def _target(arn: str) -> str:
    """A delivery target as the graph keys it: a function unqualified, anything else as it is."""
    return _unqualified(arn) if ":lambda:" in arn and ":function:" in arn else arn


def _pages(client: Any, operation: str, key: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Pages of ``operation`` (botocore has no paginator for some EventBridge operations; NextToken by hand)."""
    if client.can_paginate(operation):
        return [page.get(key, []) for page in client.get_paginator(operation).paginate(**params)]
    pages, token = [], None
    while True:
        page = getattr(client, operation)(**params, **({"NextToken": token} if token else {}))
        pages.append(page.get(key, []))
        token = page.get("NextToken")
        if not token:
            return pages
