"""sync-error-status (footgun 11): unhandled errors behind a REST API reach clients as 200.

With a non-proxy (``AWS``) Lambda integration, API Gateway picks the integration response by matching the
Lambda error message against each response's ``selectionPattern`` (a regex over the whole message); an error
no pattern matches falls to the default response - usually 200. So unless some pattern catches the errors a
function does not handle (timeouts, exceptions with arbitrary messages) and maps them to a 4xx/5xx, clients
see a 200 with an error body and think the request succeeded. The check tries ``error_samples`` (typical
unhandled-error messages) against the patterns. Proxy integrations (``AWS_PROXY``, HTTP APIs, function URLs)
answer 502/500 to unhandled errors and are not flagged; a method with no default response is not either, nor
one that invokes the function asynchronously (``X-Amz-Invocation-Type: 'Event'``: its errors never reach clients).

Fix: an integration response with ``selectionPattern`` ``.+`` (Lambda errors only: successful invocations
have no error message) mapped to 500, or switch to ``AWS_PROXY`` and return ``statusCode`` from the handler.
"""

from __future__ import annotations

import re

from chalicelib.checks.base import API_DEFINITION_CHANGES, Check, Param, Params
from chalicelib.core.model import AccountFacts, ApiRoute, Finding, FunctionSnapshot

DEFAULT_SAMPLES = [
    "division by zero",
    "'NoneType' object is not subscriptable",
    "Cannot read properties of undefined (reading 'id')",
    "2025-06-10T14:02:37.412Z 5a1c0f8e-0b7a-4c55-9f0a-2d4b8c6e1f3a Task timed out after 29.00 seconds",
]


def _catches(pattern: str, message: str) -> bool:
    try:
        return re.fullmatch(pattern, message) is not None
    except re.error:
        return False


def leaked(route: ApiRoute, samples: list[str]) -> tuple[str, list[str]]:
    """The 2xx status an unhandled error reaches clients with ('' when none does) and the samples that leak.

    Example:
        >>> from chalicelib.core.model import IntegrationResponse
        >>> r = ApiRoute("rest", "a1", "orders", "POST /orders", "AWS", 29000,
        ...              responses=(IntegrationResponse("200"), IntegrationResponse("400", "BadRequest.*")))
        >>> leaked(r, ["division by zero", "BadRequest: no id"])
        ('200', ['division by zero'])
    """
    default = next((r.status for r in route.responses if not r.pattern), "")
    if not default.startswith("2"):
        return "", []
    patterns = [(r.pattern, r.status) for r in route.responses if r.pattern]
    answers = [(s, [status for p, status in patterns if _catches(p, s)] or [default]) for s in samples]
    leaks = [(s, statuses[0]) for s, statuses in answers if all(status.startswith("2") for status in statuses)]
    return (leaks[0][1], [s for s, _ in leaks]) if leaks else ("", [])


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding per function over its non-proxy REST routes where an unhandled error answers 2xx.

    Example:
        >>> from chalicelib.core.model import FunctionRef, IntegrationResponse
        >>> r = ApiRoute("rest", "a1", "orders", "POST /orders", "AWS", 29000, responses=(IntegrationResponse("200"),))
        >>> fn = FunctionSnapshot(FunctionRef("orders-api", "123456789012", "us-east-1"), routes=(r,))
        >>> evaluate(fn, {"error_samples": ["division by zero"]}, AccountFacts())[0].evidence["routes"]
        ['POST /orders']
    """
    bad = []
    for route in snapshot.routes:
        if route.kind != "rest" or route.integration_type != "AWS" or route.invocation == "async":
            continue  # an asynchronous invocation answers at once: the function's errors never reach the client
        status, leaks = leaked(route, params["error_samples"])
        if leaks:
            bad.append((route, status, leaks))
    if not bad:
        return []
    route, status, leaks = bad[0]
    where = f"REST API {route.api_name or route.api_id} ({route.route})"
    more = f" and {len(bad) - 1} more route(s)" if len(bad) > 1 else ""
    patterns = [r for r in route.responses if r.pattern and not r.status.startswith("2")]
    partial = ("; ".join(f"errors matching {r.pattern!r} become {r.status}" for r in patterns[:2]) + ", but "
               if patterns else "no integration response maps Lambda errors to an error status: ")
    message = (f"{where}{more} uses a non-proxy (AWS) integration and {partial}an unhandled error such as "
               f"{leaks[0]!r} reaches clients as {status} with the error in the body. Add an integration response "
               f"with selectionPattern '.+' mapped to 500, or switch to AWS_PROXY and return statusCode from "
               f"the handler.")
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message,
        evidence={"routes": [r.route for r, _, _ in bad], "api_id": route.api_id, "status": status,
                  "leaked_samples": len(leaks)},
    )]


CHECK = Check(
    id="sync-error-status",
    footgun="11",
    title="Synchronous errors that reach clients as 200",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param(
            "error_samples",
            list,
            DEFAULT_SAMPLES,
            "Unhandled-error messages an error "
            "selectionPattern must catch (matched against the whole message, as API Gateway does).",
        ),
    ),
    needs=frozenset({"routes"}),
    read_permissions=("lambda:GetPolicy", "apigateway:GET"),
    triggers=frozenset(
        (
            "PutIntegration",
            "UpdateIntegration",
            "PutIntegrationResponse",
            "UpdateIntegrationResponse",
            "DeleteIntegrationResponse",
        )
    ) | frozenset(API_DEFINITION_CHANGES),
)
