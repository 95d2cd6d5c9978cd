"""apigw-timeout (footgun 2): the function may outlive API Gateway's integration timeout.

API Gateway answers 504 when its integration timeout passes (29 s REST, 30 s HTTP API by default) while the
function keeps running; the client retries and the work runs twice. Keep the function's timeout a buffer
below the tightest integration timeout that targets it. A function with no API integration is never flagged.
The fix never sets a timeout under ``min_timeout_seconds``: when the integration timeout is too short for that
(a custom ``TimeoutInMillis``), the finding proposes no automatic change.

Only integrations API Gateway waits on count. One that invokes the function asynchronously
(``X-Amz-Invocation-Type: 'Event'``) answers 202 at once, and a streamed one (``responseTransferMode: STREAM``)
may run for 15 minutes: a long Timeout behind either is by design and is never shortened. When the request
itself chooses the invocation type (a mapped header), the finding is reported without an automatic change.
WebSocket APIs have a 29 s integration limit (HTTP APIs 30 s, REST APIs 29 s by default).
"""

from __future__ import annotations

from chalicelib.checks.base import API_DEFINITION_CHANGES, Check, Param, Params, Rule
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag a function whose Timeout > tightest integration timeout − buffer_seconds.

    Example:
        >>> from chalicelib.core.model import ApiRoute, FunctionRef
        >>> route = ApiRoute("rest", "k7q2", "orders", "GET /orders", "AWS_PROXY", 29000)
        >>> fn = FunctionSnapshot(FunctionRef("orders-api", "123456789012", "us-east-1"), timeout_s=30,
        ...                       routes=(route,))
        >>> evaluate(fn, {"buffer_seconds": 4, "min_timeout_seconds": 3}, AccountFacts())[0].fix.params
        {'Timeout': 25}
        >>> tight = ApiRoute("rest", "k7q2", "orders", "GET /orders", "AWS_PROXY", 5000)
        >>> fn = FunctionSnapshot(fn.ref, timeout_s=30, routes=(tight,))
        >>> evaluate(fn, {"buffer_seconds": 4, "min_timeout_seconds": 3}, AccountFacts())[0].fix is None
        True
        >>> worker = ApiRoute("rest", "k7q2", "jobs", "POST /jobs", "AWS", 29000, invocation="async")
        >>> evaluate(FunctionSnapshot(fn.ref, timeout_s=900, routes=(worker,)), {"buffer_seconds": 4,
        ...          "min_timeout_seconds": 3}, AccountFacts())
        []
    """
    sync = [r for r in snapshot.routes if r.invocation == "sync"]
    waited = sync or [r for r in snapshot.routes if r.waited]
    if not waited:
        return []
    tightest = min(waited, key=lambda r: r.timeout_ms)
    limit_s = tightest.timeout_ms // 1000
    target = limit_s - params["buffer_seconds"]
    if snapshot.timeout_s <= max(target, 1):
        return []
    head = (f"Timeout {snapshot.timeout_s}s outlives the {limit_s}s integration timeout of {tightest.api_kind} "
            f"{tightest.api_name or tightest.api_id} ({tightest.route}): clients get 504 while the work goes on "
            f"and their retries run it twice.")
    fix: FixSpec | None = FixSpec("set-timeout", snapshot.arn, {"Timeout": target}, {"Timeout": snapshot.timeout_s})
    if not sync:
        fix = None
        message = (f"{head} The caller chooses the invocation type (X-Amz-Invocation-Type is mapped from the "
                   f"request), so an asynchronous caller may need the long Timeout: no automatic change. Set Timeout "
                   f"to {max(target, 1)}s if every caller waits, or fix the header to 'Event'.")
    elif target >= params["min_timeout_seconds"]:
        message = f"{head} Set Timeout to {target}s; move longer work behind a 202 + poll."
    else:
        fix = None
        message = (f"{head} A {params['buffer_seconds']}s buffer would leave a Timeout of {max(target, 0)}s, under "
                   f"the floor of {params['min_timeout_seconds']}s: no automatic change. Raise the integration "
                   f"timeout, or move the work behind a 202 + poll.")
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message, fix=fix,
        evidence={"integration_timeout_ms": tightest.timeout_ms, "api_id": tightest.api_id,
                  "route": tightest.route, "routes": len(waited), "not_waited": len(snapshot.routes) - len(waited)},
    )]


CHECK = Check(
    id="apigw-timeout",
    footgun="2",
    title="Timeout too close to the API Gateway integration timeout",
    doc=__doc__ or "",
    default_mode="auto",
    default_severity="high",
    evaluate=evaluate,
    params=(
        Param(
            "buffer_seconds",
            int,
            4,
            "Seconds kept between the function timeout and the integration timeout.",
            minimum=0,
            maximum=10,
        ),
        Param("min_timeout_seconds", int, 3, "The fix never sets a Timeout below this (seconds).", minimum=1,
              maximum=25),
    ),
    rules=(Rule("buffer_seconds + min_timeout_seconds <= 29 (the REST API integration timeout): otherwise no "
                "fix is ever possible", ("buffer_seconds", "min_timeout_seconds"),
                lambda p: p["buffer_seconds"] + p["min_timeout_seconds"] <= 29),),
    needs=frozenset({"routes"}),
    fix_actions=("set-timeout",),
    read_permissions=("lambda:GetPolicy", "apigateway:GET"),
    triggers=frozenset(
        (
            "UpdateFunctionConfiguration:timeout",
            "AddPermission",
            "PutIntegration",
            "UpdateIntegration",
            "CreateIntegration",
        )
    ) | frozenset(API_DEFINITION_CHANGES),
)
