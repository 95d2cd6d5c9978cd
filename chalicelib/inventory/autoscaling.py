"""Application Auto Scaling on provisioned concurrency (provisioned-idle): scalable targets, scaling policies
and scheduled actions on a function's aliases and versions.

Read only for the functions provisioned-idle flagged (``Check.finding_needs``): several of them read the
``lambda`` namespace once per run (three paginated Describe calls), one function reads its own targets (and
their policies and schedules only when it has one).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.
What moto cannot show: moto keeps a target's scheduled actions after DeregisterScalableTarget, where AWS deletes
them with it (Application Auto Scaling API reference, DeregisterScalableTarget); nothing here relies on either.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chalicelib.core.model import FunctionSnapshot, Scaler
from chalicelib.inventory.common import Reader

NAMESPACE = "lambda"
DIMENSION = "lambda:function:ProvisionedConcurrency"


def resource_id(function_name: str, qualifier: str) -> str:
    """Application Auto Scaling's id of an alias / version's provisioned concurrency.

    Example:
        >>> resource_id("checkout", "live")
        'function:checkout:live'
    """
    return f"function:{function_name}:{qualifier}"


class ScalingReader(Reader):
    """Application Auto Scaling targets, policies and schedules on provisioned concurrency."""

    def load_scaling(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``scaling`` facet: the scalers on each function's aliases / versions with provisioned concurrency."""
        if bulk:
            index = self.ctx.once("scalers", lambda: self._read_scaling(None))
        else:
            ids = [resource_id(snapshots[0].name, c.qualifier) for c in snapshots[0].provisioned]
            index = self._read_scaling(ids) if ids else {}
        for snapshot in snapshots:
            snapshot.scalers = tuple(index[rid] for rid in sorted(index)
                                     if rid.startswith(f"function:{snapshot.name}:"))
            snapshot.loaded.add("scaling")

    def _read_scaling(self, ids: list[str] | None) -> dict[str, Scaler]:
        """Resource id → its Scaler: ``ids`` None reads the whole namespace (a sweep), else those targets."""
        selector: dict[str, Any] = {"ServiceNamespace": NAMESPACE}
        targets = self._describe("describe_scalable_targets", "ScalableTargets",
                                 {**selector, **({"ResourceIds": ids} if ids else {})})
        targets = [t for t in targets if t.get("ScalableDimension") == DIMENSION]
        policies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        schedules: dict[str, list[dict[str, Any]]] = defaultdict(list)
        scopes = [{}] if ids is None else [{"ResourceId": t["ResourceId"]} for t in targets]
        for scope in scopes:
            for policy in self._describe("describe_scaling_policies", "ScalingPolicies", {**selector, **scope}):
                policies[policy.get("ResourceId", "")].append(policy)
            for action in self._describe("describe_scheduled_actions", "ScheduledActions", {**selector, **scope}):
                schedules[action.get("ResourceId", "")].append(action)
        return {t["ResourceId"]: _scaler(t, policies[t["ResourceId"]], schedules[t["ResourceId"]]) for t in targets}

    def _describe(self, operation: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        pages = self.clients("application-autoscaling").get_paginator(operation).paginate(**params)
        return [item for page in pages for item in page.get(key, [])]


def _scaler(target: dict[str, Any], policies: list[dict[str, Any]], schedules: list[dict[str, Any]]) -> Scaler:
    qualifier = str(target["ResourceId"]).split(":", 2)[-1]
    return Scaler(
        qualifier=qualifier,
        min_capacity=int(target.get("MinCapacity", 0)),
        max_capacity=int(target.get("MaxCapacity", 0)),
        policies=tuple((str(p.get("PolicyName", "")), str(p.get("PolicyType", "")),
                        (p.get("TargetTrackingScalingPolicyConfiguration") or {}).get("TargetValue"))
                       for p in policies if p.get("ScalableDimension", DIMENSION) == DIMENSION),
        schedules=tuple((str(a.get("ScheduledActionName", "")), str(a.get("Schedule", "")))
                        for a in schedules if a.get("ScalableDimension", DIMENSION) == DIMENSION),
    )
