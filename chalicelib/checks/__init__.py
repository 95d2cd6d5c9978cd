"""The self-describing check registry: one module per policy id, each exporting ``CHECK``.

A check carries its own doc, params schema, the snapshot facets it reads, the metrics it needs and the
fix actions it may propose, so ``safetycatch explain``, ``lint`` and the IAM policy all come from the code.

Example:
    >>> from chalicelib.checks import REGISTRY
    >>> REGISTRY["apigw-timeout"].default_mode
    'auto'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from chalicelib.model import AccountFacts, Finding, FunctionSnapshot, LogSearch, MetricQuery

Params = dict[str, Any]
Evaluate = Callable[[FunctionSnapshot, Params, AccountFacts], list[Finding]]

# Facets a check may read beyond the function configuration (see inventory.Inventory.load).
FACETS = frozenset({"concurrency", "mappings", "routes", "metrics", "account",
                    "network", "role_policies", "triggers", "logs", "recursion"})


@dataclass(frozen=True)
class Param:
    """One tunable of a check, validated by ``settings`` when policies are loaded."""

    name: str
    kind: type
    default: Any
    doc: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None


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
    # Facets read only for the functions this check flagged (per-function reads AWS has no bulk call for,
    # such as the values a fix must store as its prior); the check then runs again with them.
    finding_needs: frozenset[str] = frozenset()
    # The log search the ``logs`` facet runs for this check (patterns, look-back), from its params.
    log_search: Callable[[Params], Optional[LogSearch]] = lambda params: None

    def defaults(self) -> Params:
        return {p.name: p.default for p in self.params}


def _load() -> dict[str, Check]:
    from chalicelib.checks import apigw_timeout, batch_partial_failure, reserved_concurrency
    from chalicelib.checks import recursive_trigger, sync_error_status, tmp_storage, vpc_no_egress

    checks = [module.CHECK for module in (apigw_timeout, batch_partial_failure, reserved_concurrency)]
    checks += [module.CHECK for module in (vpc_no_egress, recursive_trigger, sync_error_status, tmp_storage)]
    return {c.id: c for c in sorted(checks, key=lambda c: c.id)}


REGISTRY: dict[str, Check] = _load()
