"""Fix actions: how a ``FixSpec`` is applied and undone, always through the gateway.

Each action names the gateway writes it uses, so its IAM permissions come from ``gateway.WRITES``. A fix
spec carries the prior value it replaces (``spec.prior``); ``undo`` puts exactly that back.

Example:
    >>> spec = FixSpec("set-timeout", "arn:aws:lambda:us-east-1:123456789012:function:f", {"Timeout": 25},
    ...                {"Timeout": 30})
    >>> gateway = Gateway(Clients("us-east-1"), dry_run=True)
    >>> apply(gateway, spec); undo(gateway, spec)
    >>> [w.params["Timeout"] for w in gateway.log]
    [25, 30]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from chalicelib.gateway import WRITES, Gateway
from chalicelib.model import FixSpec


@dataclass(frozen=True)
class FixAction:
    name: str
    doc: str
    writes: tuple[str, ...]
    apply: Callable[[Gateway, FixSpec], None]
    undo: Callable[[Gateway, FixSpec], None]

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(sorted({WRITES[w][2] for w in self.writes}))


def _set_reserved(gateway: Gateway, target: str, value: object) -> None:
    if value is None:
        gateway.delete_function_concurrency(target)
    else:
        gateway.put_function_concurrency(target, int(value))  # type: ignore[call-overload]


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


ACTIONS: dict[str, FixAction] = {a.name: a for a in (
    FixAction(
        "set-timeout", "Set the function's Timeout (seconds).", ("UpdateFunctionConfiguration",),
        apply=lambda gw, s: gw.update_function_configuration(s.target, Timeout=int(s.params["Timeout"])),
        undo=lambda gw, s: gw.update_function_configuration(s.target, Timeout=int(s.prior["Timeout"])),
    ),
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
        "stop-recursive-loop", "Let Lambda stop the recursive loop (RecursiveLoop=Terminate) and cap the "
        "function's concurrency; undo restores both.",
        ("PutFunctionRecursionConfig", "PutFunctionConcurrency", "DeleteFunctionConcurrency"),
        apply=_stop_recursive_loop, undo=_restart_recursive_loop,
    ),
)}


def apply(gateway: Gateway, spec: FixSpec) -> None:
    """Apply ``spec`` through ``gateway`` (which may be in dry-run)."""
    ACTIONS[spec.action].apply(gateway, spec)


def undo(gateway: Gateway, spec: FixSpec) -> None:
    """Put back ``spec.prior`` through ``gateway``."""
    ACTIONS[spec.action].undo(gateway, spec)
