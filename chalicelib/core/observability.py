"""Powertools Logger, Tracer and Metrics (EMF) wired into every Chalice handler as middleware.

``install(app)`` registers Powertools' own Lambda decorators through Chalice's ``ConvertToMiddleware``, so
every handler (events, routes, the worker) gets the Lambda context in its log lines, an X-Ray segment and
its metrics flushed, without a decorator per handler. The Tracer (and the X-Ray SDK it imports, ~0.3 s) is
created only inside Lambda: the CLI and the tests never pay for it. The Powertools service name (``safetycatch-bot``)
differs from the Chalice app name (``safetycatch``) on purpose: with the same name both loggers would
print every line.

Metrics are recorded only inside Lambda: elsewhere (CLI, tests) nothing would flush them, and Powertools
prints a full metric set to stdout on its own, which would corrupt the CLI's JSON output.

Example:
    >>> from chalice import Chalice
    >>> app = Chalice(app_name="safetycatch")
    >>> install(app)
    >>> record_report({"skipped": None, "findings": [{"outcome": "fixed"}]})
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.core.log import logger

if TYPE_CHECKING:  # the operator CLI runs the handlers without Chalice installed; only install() needs it
    from chalice import Chalice

SERVICE = "safetycatch-bot"
NAMESPACE = "safetycatch"

metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# An invocation that records nothing (outside Lambda, or a skipped route) flushes nothing; not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
_tracer: Tracer | None = None

# outcome -> metric name (one metric per outcome keeps the EMF dimensions to the service alone)
OUTCOME_METRICS = {"fixed": "FindingsFixed", "pending-approval": "ApprovalsRequested", "notified": "FindingsNotified",
                   "dry-run": "FindingsDryRun", "failed": "FixesFailed", "exempt": "FindingsExempt",
                   "reported": "FindingsReported"}


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def tracer() -> Tracer:
    """The Powertools Tracer (created on first use; it patches botocore so each AWS call is a subsegment)."""
    global _tracer
    if _tracer is None:
        _tracer = Tracer(service=SERVICE)
    return _tracer


def install(app: Chalice) -> None:
    """Wrap every handler of ``app`` in Powertools Logger context, Tracer (in Lambda) and Metrics."""
    from chalice import ConvertToMiddleware

    app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
    if in_lambda():
        app.register_middleware(ConvertToMiddleware(tracer().capture_lambda_handler(capture_response=False)))
    app.register_middleware(ConvertToMiddleware(metrics.log_metrics))


def record_report(report: dict[str, Any]) -> None:
    """Count one handled event: skipped, or each finding by outcome (EMF, flushed by the middleware)."""
    if not in_lambda():
        return
    if report.get("skipped"):
        metrics.add_metric(name="EventsSkipped", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="EventsHandled", unit=MetricUnit.Count, value=1)
    for finding in report.get("findings", []):
        name = OUTCOME_METRICS.get(str(finding.get("outcome")))
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def scope_metric(account: str, region: str, name: str, value: float) -> None:
    """One EMF metric of a swept scope, with ``Account`` and ``Region`` as dimensions (written at once: each
    scope's dimensions are its own, never merged with the invocation's other metrics).

    Example:
        >>> scope_metric("111111111111", "eu-west-1", "FunctionsSwept", 40)  # outside Lambda: nothing written
    """
    if not in_lambda():
        return
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        metric.add_dimension(name="Account", value=account)
        metric.add_dimension(name="Region", value=region)
