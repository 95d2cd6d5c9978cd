"""Drift: has the target of a fix been changed since the fix? Undo (and a kill's Restore) must never overwrite a
change somebody made after the fix, so it first compares what each fix kind set with what is there now.

Every fix kind says what it compares, read fresh:

=============================  ==============================================================================
``set-timeout`` / ``-memory``  the function's Timeout / MemorySize
``set-reserved-concurrency``   ReservedConcurrentExecutions (GetFunctionConcurrency)
``kill``                       ReservedConcurrentExecutions is still 0 (mappings the kill disabled are only
                               re-enabled, and RecursiveLoop only put back to its prior, by a restore)
``report-batch-item-failures`` the mapping's FunctionResponseTypes
``set-provisioned-concurrency`` the requested provisioned concurrency of the alias / version
``scale-provisioned-concurrency`` the scalable target's MinCapacity / MaxCapacity and the policy's TargetValue
                               (not the provisioned concurrency itself: the scaler moves it)
``stop-recursive-loop``        RecursiveLoop and ReservedConcurrentExecutions
``put-runaway-alarm``          the managed alarm, as a whole (its canonical form)
=============================  ==============================================================================

When the current value cannot be read (an API unavailable), the answer is a refusal that says so: exact means
"known unchanged", not "not known to have changed".

Example:
    drift(inventory, FunctionRef("orders-api", "123456789012", "us-east-1"), spec)
    # -> 'Timeout is now 12, the fix set 25'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import is_not_found
from chalicelib.core.model import FixSpec, FunctionRef
from chalicelib.domain import alarms

Current = dict[str, Any] | str  # the current values of the compared keys, or why they cannot be compared


def drift(inventory: Any, ref: FunctionRef, spec: FixSpec, retry: bool = False) -> str | None:
    """How the target differs now from what ``spec`` set (None when it still matches); one line for people.

    ``retry``: an undo / restore that failed half-way is being retried, so each compared value may also be the
    prior one (what the failed attempt already put back); anything else is somebody's change, and is kept."""
    reader = _READERS.get(spec.action)
    if reader is None:
        return f"cannot tell whether {spec.action} was changed since (no reader): not undone"
    try:
        current = reader(inventory, ref, spec)
    except ClientError as exc:
        if is_not_found(exc):
            return "the function no longer exists"
        raise
    if isinstance(current, str):
        return current
    wanted = {"ReservedConcurrentExecutions": 0} if spec.action == "kill" else spec.params
    verb = "the kill set" if spec.action == "kill" else "the fix set"
    changed = [f"{key} is now {current[key]}, {verb} {value}" for key, value in wanted.items()
               if key in current and _norm(current[key]) != _norm(value)
               and not (retry and key in spec.prior and _norm(current[key]) == _norm(spec.prior[key]))]
    return "; ".join(changed) or None


def _norm(value: Any) -> Any:
    return sorted(map(str, value)) if isinstance(value, (list, tuple)) else value


def _configuration(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    snapshot = inventory.function(ref)
    if snapshot is None:
        return "the function no longer exists"
    return {"Timeout": snapshot.timeout_s, "MemorySize": snapshot.memory_mb}


def _reserved(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    return {"ReservedConcurrentExecutions": inventory.reserved_concurrency(ref)}


def _mapping(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    mapping = inventory.mapping(spec.target)
    if mapping is None:
        return f"mapping {spec.target} no longer exists"
    return {"FunctionResponseTypes": list(mapping.response_types)}


def _provisioned(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    snapshot = inventory.function(ref)
    if snapshot is None:
        return "the function no longer exists"
    inventory.load({"provisioned": [snapshot]}, {})
    qualifier = str(spec.params.get("Qualifier", ""))
    config = next((c for c in snapshot.provisioned if c.qualifier == qualifier), None)
    if config is None:
        return f"{ref.name}:{qualifier} has no provisioned concurrency any more"
    if config.requested is None:
        return f"cannot read the provisioned concurrency of {ref.name}:{qualifier} ({snapshot.provisioned_note}): " \
               "not undone"
    return {"Qualifier": qualifier, "ProvisionedConcurrentExecutions": config.requested}


def _scaler(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    snapshot = inventory.function(ref)
    if snapshot is None:
        return "the function no longer exists"
    failed = inventory.load({"provisioned": [snapshot], "scaling": [snapshot]}, {})
    qualifier = str(spec.params.get("Qualifier", ""))
    if failed:
        return f"cannot read the scaler of {ref.name}:{qualifier} ({'; '.join(failed.values())}): not undone"
    scaler = next((s for s in snapshot.scalers if s.qualifier == qualifier), None)
    if scaler is None:
        return f"{ref.name}:{qualifier} is no longer a scalable target"
    targets = [value for name, _, value in scaler.policies if name == spec.params.get("PolicyName")]
    if not targets:
        return f"scaling policy {spec.params.get('PolicyName')} on {ref.name}:{qualifier} no longer exists"
    return {"Qualifier": qualifier, "MinCapacity": scaler.min_capacity, "MaxCapacity": scaler.max_capacity,
            "TargetValue": targets[0]}


def _recursion(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    current: dict[str, Any] = {}
    if spec.params.get("RecursiveLoop"):
        value, why = inventory.recursion_config(ref)
        if value == "unavailable":
            return f"cannot read RecursiveLoop ({why}): not undone"
        current["RecursiveLoop"] = value
    if "ReservedConcurrentExecutions" in spec.params:
        current["ReservedConcurrentExecutions"] = inventory.reserved_concurrency(ref)
    return current


def _alarm(inventory: Any, ref: FunctionRef, spec: FixSpec) -> Current:
    name = str(spec.params.get("AlarmName", ""))
    described = inventory.alarm(name)
    if described is None:
        return f"alarm {name} no longer exists"
    put = alarms.alarm_spec(str(spec.params["FunctionName"]), alarms.Thresholds.from_params(spec.params))
    if alarms.canonical(alarms.put_arguments(described)) != alarms.canonical(put):
        return f"alarm {name} was changed after the fix"
    return {}


_READERS: dict[str, Callable[[Any, FunctionRef, FixSpec], Current]] = {
    "set-timeout": _configuration,
    "set-memory": _configuration,
    "set-reserved-concurrency": _reserved,
    "kill": _reserved,
    "report-batch-item-failures": _mapping,
    "set-provisioned-concurrency": _provisioned,
    "scale-provisioned-concurrency": _scaler,
    "stop-recursive-loop": _recursion,
    "put-runaway-alarm": _alarm,
}
