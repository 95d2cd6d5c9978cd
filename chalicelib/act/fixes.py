"""Fix actions: how a ``FixSpec`` is applied and undone, always through the gateway.

Each action names the gateway writes it uses, so its IAM permissions come from ``gateway.WRITES``. A fix
spec carries the prior value it replaces (``spec.prior``); ``undo`` puts exactly that back.

Example:
    spec = FixSpec("set-timeout", "arn:aws:lambda:us-east-1:123456789012:function:f", {"Timeout": 25},
                   {"Timeout": 30})
    gateway = Gateway(Clients("us-east-1"), dry_run=True)
    apply(gateway, spec); undo(gateway, spec)
    [w.params["Timeout"] for w in gateway.log]
    # -> [25, 30]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.act.gateway import Gateway, operation_permissions
from chalicelib.core.aws import error_code, is_not_found
from chalicelib.core.model import FixSpec
from chalicelib.domain import alarms


@dataclass(frozen=True)
class FixAction:
    name: str
    doc: str
    writes: tuple[str, ...]
    apply: Callable[[Gateway, FixSpec], None]
    undo: Callable[[Gateway, FixSpec], None]
    record: Callable[[FixSpec], dict[str, str]] = lambda spec: {}  # kept with the fix record (what was put)

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(sorted({a for w in self.writes for a in operation_permissions(w)}))


def _set_reserved(gateway: Gateway, target: str, value: object) -> None:
    if value is None:
        gateway.delete_function_concurrency(target)
    else:
        gateway.put_function_concurrency(target, int(value))  # type: ignore[call-overload]


class PartialFix(RuntimeError):
    """The fix's main change was made but some secondary writes failed (the message lists them)."""


def _put_alarm(gateway: Gateway, spec: FixSpec) -> None:
    params = spec.params
    gateway.put_metric_alarm(**alarms.alarm_spec(params["FunctionName"], alarms.Thresholds.from_params(params)))


def _alarm_definition(spec: FixSpec) -> dict[str, str]:
    """The alarm exactly as the bot puts it (canonical form), recorded with the fix: the kill-switch later
    compares a firing alarm with it (an alarm state alone is not evidence)."""
    put = alarms.alarm_spec(spec.params["FunctionName"], alarms.Thresholds.from_params(spec.params))
    return {"alarm_definition": json.dumps(alarms.canonical(put), sort_keys=True)}


def _restore_alarm(gateway: Gateway, spec: FixSpec) -> None:
    prior = spec.prior.get("Alarm")
    if prior is None:
        gateway.delete_alarm(spec.params["AlarmName"])
    else:
        gateway.put_metric_alarm(**prior)


def _kill(gateway: Gateway, spec: FixSpec) -> None:
    """Throttle to 0 first (if that fails nothing changed), then the secondary writes, best effort."""
    gateway.put_function_concurrency(spec.target, int(spec.params["ReservedConcurrentExecutions"]))
    failures = []
    for uuid in spec.params.get("DisableMappings", []):
        try:
            gateway.update_event_source_mapping(uuid, Enabled=False)
        except ClientError as exc:
            failures.append(f"mapping {uuid} not disabled ({error_code(exc) or 'error'})")
    if spec.params.get("RecursiveLoop"):
        try:
            gateway.put_function_recursion_config(spec.target, spec.params["RecursiveLoop"])
        except ClientError as exc:
            failures.append(f"RecursiveLoop not set ({error_code(exc) or 'error'})")
    if failures:
        raise PartialFix("; ".join(failures))


def _unkill(gateway: Gateway, spec: FixSpec) -> None:
    """Put back exactly ``spec.prior``: the concurrency setting (deleted if there was none), only the mappings
    the kill disabled, and the recursion setting when the kill changed it."""
    _set_reserved(gateway, spec.target, spec.prior.get("ReservedConcurrentExecutions"))
    for mapping in spec.prior.get("Mappings", []):
        try:
            gateway.update_event_source_mapping(mapping["UUID"], Enabled=True)
        except ClientError as exc:
            if not is_not_found(exc):  # deleted since the kill: nothing left to re-enable
                raise
    if spec.params.get("RecursiveLoop") and spec.prior.get("RecursiveLoop") in ("Allow", "Terminate"):
        gateway.put_function_recursion_config(spec.target, spec.prior["RecursiveLoop"])
def _stop_recursive_loop(gateway: Gateway, spec: FixSpec) -> None:
    """RecursiveLoop=Terminate (when the function's recursion config is readable) and a concurrency cap."""
    if spec.params.get("RecursiveLoop"):
        gateway.put_function_recursion_config(spec.target, str(spec.params["RecursiveLoop"]))
    if "ReservedConcurrentExecutions" in spec.params:
        _set_reserved(gateway, spec.target, spec.params["ReservedConcurrentExecutions"])


def _restart_recursive_loop(gateway: Gateway, spec: FixSpec) -> None:
    """Put back exactly what ``_stop_recursive_loop`` changed."""
    if spec.params.get("RecursiveLoop") and spec.prior.get("RecursiveLoop"):
        gateway.put_function_recursion_config(spec.target, str(spec.prior["RecursiveLoop"]))
    if "ReservedConcurrentExecutions" in spec.params:
        _set_reserved(gateway, spec.target, spec.prior.get("ReservedConcurrentExecutions"))


PC_DIMENSION = "lambda:function:ProvisionedConcurrency"
PC_UTILIZATION = "LambdaProvisionedConcurrencyUtilization"


def _scaling_id(spec: FixSpec) -> str:
    return f"function:{spec.target.rsplit(':', 1)[-1]}:{spec.params['Qualifier']}"


def _scale_provisioned(gateway: Gateway, spec: FixSpec) -> None:
    """Register the alias / version with Application Auto Scaling and track ProvisionedConcurrencyUtilization;
    if the policy fails, the registration is taken back (nothing half-done is left)."""
    resource, params = _scaling_id(spec), spec.params
    gateway.register_scalable_target(resource, PC_DIMENSION, int(params["MinCapacity"]), int(params["MaxCapacity"]))
    try:
        gateway.put_target_tracking_policy(resource, PC_DIMENSION, str(params["PolicyName"]), PC_UTILIZATION,
                                           float(params["TargetValue"]))
    except ClientError:
        gateway.deregister_scalable_target(resource, PC_DIMENSION)
        raise


def _unscale_provisioned(gateway: Gateway, spec: FixSpec) -> None:
    """Remove what ``_scale_provisioned`` registered (its policy, then the target) and put the provisioned
    concurrency back to its prior value, which the scaler may have changed meanwhile."""
    resource = _scaling_id(spec)
    try:
        gateway.delete_scaling_policy(resource, PC_DIMENSION, str(spec.params["PolicyName"]))
    except ClientError as exc:
        if error_code(exc) != "ObjectNotFoundException":  # already gone with its target
            raise
    try:
        gateway.deregister_scalable_target(resource, PC_DIMENSION)
    except ClientError as exc:
        if error_code(exc) != "ObjectNotFoundException":
            raise
    gateway.put_provisioned_concurrency_config(spec.target, str(spec.prior["Qualifier"]),
                                               int(spec.prior["ProvisionedConcurrentExecutions"]))


def _config_field(name: str, field: str, doc: str) -> FixAction:
    """A fix that sets one integer field of the function configuration; undo puts the prior value back."""
    return FixAction(
        name, doc, ("UpdateFunctionConfiguration",),
        apply=lambda gw, s: gw.update_function_configuration(s.target, **{field: int(s.params[field])}),
        undo=lambda gw, s: gw.update_function_configuration(s.target, **{field: int(s.prior[field])}),
    )


ACTIONS: dict[str, FixAction] = {a.name: a for a in (
    _config_field("set-timeout", "Timeout", "Set the function's Timeout (seconds)."),
    FixAction(
        "set-reserved-concurrency", "Reserve (and cap) concurrency; undo removes it or restores the old value.",
        ("PutFunctionConcurrency", "DeleteFunctionConcurrency"),
        apply=lambda gw, s: _set_reserved(gw, s.target, s.params["ReservedConcurrentExecutions"]),
        undo=lambda gw, s: _set_reserved(gw, s.target, s.prior.get("ReservedConcurrentExecutions")),
    ),
    FixAction(
        "report-batch-item-failures", "Turn on ReportBatchItemFailures on an event source mapping.",
        ("UpdateEventSourceMapping",),
        apply=lambda gw, s: gw.update_event_source_mapping(
            s.target, FunctionResponseTypes=list(s.params["FunctionResponseTypes"])),
        undo=lambda gw, s: gw.update_event_source_mapping(
            s.target, FunctionResponseTypes=list(s.prior["FunctionResponseTypes"])),
    ),
    FixAction(
        "put-runaway-alarm", "Create or update the function's safetycatch-runaway-<function> alarm; undo deletes "
        "it or puts the previous alarm back.", ("PutMetricAlarm", "DeleteAlarms"),
        apply=_put_alarm, undo=_restore_alarm, record=_alarm_definition,
    ),
    FixAction(
        "kill", "Throttle a runaway function to 0, disable its enabled event source mappings and set RecursiveLoop="
        "Terminate; undo restores exactly the prior state.",
        ("PutFunctionConcurrency", "DeleteFunctionConcurrency", "UpdateEventSourceMapping",
         "PutFunctionRecursionConfig"),
        apply=_kill, undo=_unkill,
    ),
    _config_field("set-memory", "MemorySize", "Set the function's MemorySize (MB); memory also buys CPU."),
    FixAction(
        "set-provisioned-concurrency", "Set provisioned concurrency on an alias or version (never below 1).",
        ("PutProvisionedConcurrencyConfig",),
        apply=lambda gw, s: gw.put_provisioned_concurrency_config(
            s.target, str(s.params["Qualifier"]), max(1, int(s.params["ProvisionedConcurrentExecutions"]))),
        undo=lambda gw, s: gw.put_provisioned_concurrency_config(
            s.target, str(s.prior["Qualifier"]), int(s.prior["ProvisionedConcurrentExecutions"])),
    ),
    FixAction(
        "scale-provisioned-concurrency", "Let Application Auto Scaling track ProvisionedConcurrencyUtilization on "
        "an alias or version (a scalable target with min/max from the observed peaks and a target-tracking policy); "
        "undo deletes the policy, deregisters the target and puts the prior provisioned concurrency back.",
        ("RegisterScalableTarget", "PutScalingPolicy", "DeleteScalingPolicy", "DeregisterScalableTarget",
         "PutProvisionedConcurrencyConfig"),
        apply=_scale_provisioned, undo=_unscale_provisioned,
    ),
    FixAction(
        "stop-recursive-loop", "Let Lambda stop the recursive loop (RecursiveLoop=Terminate) and cap the "
        "function's concurrency; undo restores both.",
        ("PutFunctionRecursionConfig", "PutFunctionConcurrency", "DeleteFunctionConcurrency"),
        apply=_stop_recursive_loop, undo=_restart_recursive_loop,
    ),
)}


def apply(gateway: Gateway, spec: FixSpec) -> None:
    """Apply ``spec`` through ``gateway`` (which may be in dry-run)."""
    ACTIONS[spec.action].apply(gateway, spec)


def record(spec: FixSpec) -> dict[str, str]:
    """What to keep with the fix record besides the spec (for ``put-runaway-alarm``: the alarm's definition)."""
    return ACTIONS[spec.action].record(spec)


def undo(gateway: Gateway, spec: FixSpec) -> None:
    """Put back ``spec.prior`` through ``gateway``."""
    ACTIONS[spec.action].undo(gateway, spec)


def describe_change(spec: dict[str, Any]) -> tuple[str, str]:
    """(current, proposed) of a fix spec (its JSON form), for people: one ``key = value`` line per parameter.

    Example:
        >>> describe_change({"params": {"Timeout": 25}, "prior": {"Timeout": 30}})
        ('Timeout = 30', 'Timeout = 25')
    """
    def show(values: dict[str, Any], key: str) -> str:
        value = values.get(key)
        if value is None or value == []:
            return f"{key} = none"
        return f"{key} = {', '.join(map(str, value)) if isinstance(value, list) else value}"

    keys = list(dict.fromkeys([*spec.get("params", {}), *spec.get("prior", {})]))
    return ("\n".join(show(spec.get("prior", {}), k) for k in keys),
            "\n".join(show(spec.get("params", {}), k) for k in keys))


def describe_spec(spec: dict[str, Any]) -> str:
    """``current → proposed`` of a fix spec on one line.

    Example:
        >>> describe_spec({"params": {"Timeout": 25, "MemorySize": 512}, "prior": {"Timeout": 30, "MemorySize": 128}})
        'Timeout = 30, MemorySize = 128 → Timeout = 25, MemorySize = 512'
    """
    current, proposed = describe_change(spec)
    return f"{current.replace(chr(10), ', ')} → {proposed.replace(chr(10), ', ')}"
