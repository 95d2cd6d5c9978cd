"""The self-describing check registry: one module per policy id, each exporting ``CHECK``.

A check carries its own doc, params schema, the snapshot facets it reads, the metrics it needs and the
fix actions it may propose, so ``safetycatch explain``, ``lint`` and the IAM policy all come from the code.

Example:
    >>> from chalicelib.checks import REGISTRY
    >>> REGISTRY["apigw-timeout"].default_mode
    'auto'
"""

from __future__ import annotations

from typing import Any

from chalicelib.checks.base import FACETS, Check, Evaluate, Param, Params

__all__ = ["EVERY_POLICY", "FACETS", "REGISTRY", "Check", "Evaluate", "Param", "Params", "concerned"]

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
