"""The self-describing check registry: one module per policy id, each exporting ``CHECK``.

A check carries its own doc, params schema, the snapshot facets it reads, the metrics it needs and the
fix actions it may propose, so ``safetycatch explain``, ``lint`` and the IAM policy all come from the code.

Example:
    >>> from chalicelib.checks import REGISTRY
    >>> REGISTRY["apigw-timeout"].default_mode
    'auto'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.model import AccountFacts, Finding, FunctionSnapshot, LogSearch, MetricQuery

Params = dict[str, Any]
Evaluate = Callable[[FunctionSnapshot, Params, AccountFacts], list[Finding]]

# Facets a check may read beyond the function configuration (see inventory.Inventory.load).
FACETS = frozenset({"concurrency", "mappings", "routes", "metrics", "account", "alarms",
                    "network", "role_policies", "triggers", "logs", "recursion"})
FACETS |= frozenset({"urls", "provisioned"})  # function URLs; provisioned-concurrency configs


@dataclass(frozen=True)
class Param:
    """One tunable of a check, validated by ``settings`` when policies are loaded."""

    name: str
    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Check:
    """A footgun check: ``evaluate(snapshot, params, account) -> [Finding]``, pure, no AWS calls.

    ``in_scope`` is a cheap pre-filter over the base snapshot (config and tags); facets are read only for
    functions in scope, which keeps sweeps to bulk reads. ``metrics(params)`` names the CloudWatch series.
    """

    id: str
    footgun: str
    title: str
    doc: str
    default_mode: str
    default_severity: str
    evaluate: Evaluate
    params: tuple[Param, ...] = ()
    needs: frozenset[str] = frozenset()
    in_scope: Callable[[FunctionSnapshot, Params], bool] = lambda snapshot, params: True
    metrics: Callable[[Params], list[MetricQuery]] = lambda params: []
    fix_actions: tuple[str, ...] = ()
    read_permissions: tuple[str, ...] = field(default=())
    after: frozenset[str] = frozenset()  # policy ids whose findings this check reads (snapshot.flagged_by)
    # Facets read only for the functions this check flagged (per-function reads AWS has no bulk call for,
    # such as the values a fix must store as its prior); the check then runs again with them.
    finding_needs: frozenset[str] = frozenset()
    # The log search the ``logs`` facet runs for this check (patterns, look-back), from its params.
    log_search: Callable[[Params], LogSearch | None] = lambda params: None
    # The CloudTrail changes that can alter this check's verdict: base event names, or
    # ``UpdateFunctionConfiguration:<requestParameter>`` for one field. A Lambda or API Gateway event
    # evaluates only the checks it concerns (see ``concerned``); empty means every change concerns it.
    triggers: frozenset[str] = frozenset()

    def defaults(self) -> Params:
        return {p.name: p.default for p in self.params}


# Changes after which every policy is re-evaluated: a new function, and tags (exempt / critical / kill-switch).
EVERY_POLICY = frozenset({"CreateFunction", "TagResource", "UntagResource"})


def concerned(event_name: str, request: Any) -> tuple[str, ...]:
    """The policy ids a Lambda / API Gateway change can affect; ``()`` means all of them.

    UpdateFunctionConfiguration is narrowed by the fields it sent (CloudTrail logs the request); any doubt
    (no request parameters, a change no check declares) means all.

    Example:
        >>> concerned("UpdateFunctionConfiguration", {"functionName": "f", "timeout": 60, "environment": {}})
        ('apigw-timeout', 'env-secrets')
    """
    if event_name in EVERY_POLICY:
        return ()
    keys = {event_name}
    if event_name == "UpdateFunctionConfiguration":
        if not isinstance(request, dict):
            return ()
        # ``environment`` is logged as a redacted {} whether or not it changed, so it always counts
        keys = {f"{event_name}:{field_name}" for field_name in request if field_name != "functionName"}
    found = tuple(c.id for c in REGISTRY.values() if not c.triggers or c.triggers & keys)
    declared = {t for c in REGISTRY.values() for t in c.triggers}
    return found if keys & declared else ()


def _load() -> dict[str, Check]:
    from chalicelib.checks import (
        apigw_timeout,
        batch_partial_failure,
        cold_start_latency,
        env_secrets,
        memory_cpu,
        package_size,
        provisioned_idle,
        recursive_trigger,
        reserved_concurrency,
        runaway_loop,
        sync_error_status,
        tmp_storage,
        vpc_no_egress,
    )

    checks = [module.CHECK for module in (apigw_timeout, batch_partial_failure, reserved_concurrency)]
    checks += [module.CHECK for module in (vpc_no_egress, recursive_trigger, package_size, env_secrets,
                                           cold_start_latency, provisioned_idle, memory_cpu, sync_error_status,
                                           tmp_storage, runaway_loop)]
    return {c.id: c for c in sorted(checks, key=lambda c: c.id)}


REGISTRY: dict[str, Check] = _load()
