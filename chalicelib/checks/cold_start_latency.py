"""cold-start-latency (footgun 7): cold starts on a user-facing (API-fronted) path.

A function behind a REST API, an HTTP API or a function URL answers people: after a quiet spell the first
request pays the cold start, longer with little memory (little CPU for the init code) or a big package.
Flagged: API-fronted, no provisioned concurrency, and a heavy start (MemorySize at or below ``max_memory_mb``
or code + layers over ``min_package_mb``). The advice: ``suggested_pc`` provisioned-concurrency slots on an
alias (the message gives their monthly cost, an estimate from published prices), or trim the start (more
memory, smaller package, lazy imports). A sweep sees a function URL only when CloudWatch shows it served
requests in the last two weeks (UrlRequestCount); the event path reads the URL configuration itself.
"""

from __future__ import annotations

from chalicelib import pricing
from chalicelib.checks.base import Check, Param, Params
from chalicelib.model import AccountFacts, Finding, FunctionSnapshot

MB = 1024 * 1024


def package_mb(snapshot: FunctionSnapshot) -> float:
    return (snapshot.code_size + sum(layer.code_size for layer in snapshot.layers)) / MB


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    """Heavy start: little memory or a big package (read from the configuration, no AWS call)."""
    return snapshot.memory_mb <= params["max_memory_mb"] or package_mb(snapshot) > params["min_package_mb"]


def _front(snapshot: FunctionSnapshot) -> str:
    if snapshot.routes:
        route = snapshot.routes[0]
        api = "REST API" if route.kind == "rest" else "HTTP API"
        more = f" and {len(snapshot.routes) - 1} more" if len(snapshot.routes) > 1 else ""
        return f"{api} {route.api_name or route.api_id} ({route.route}){more}"
    return "its function URL" if snapshot.function_url else ""


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag an API-fronted, heavy-start function without provisioned concurrency.

    Example:
        >>> from chalicelib.model import ApiRoute, FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("signup", "123456789012", "us-east-1"), memory_mb=128,
        ...                       routes=(ApiRoute("http", "a1", "web", "POST /signup", "AWS_PROXY", 30000),))
        >>> p = {"max_memory_mb": 256, "min_package_mb": 20, "suggested_pc": 2}
        >>> evaluate(fn, p, AccountFacts())[0].evidence["estimated_monthly_pc_usd"]
        2.74
    """
    front = _front(snapshot)
    if not front or snapshot.provisioned or not in_scope(snapshot, params):
        return []
    heavy = []
    if snapshot.memory_mb <= params["max_memory_mb"]:
        heavy.append(f"only {snapshot.memory_mb} MB of memory, so little CPU for init")
    if package_mb(snapshot) > params["min_package_mb"]:
        heavy.append(f"a {package_mb(snapshot):.1f} MB package")
    slots = params["suggested_pc"]
    cost = pricing.provisioned_monthly(slots, snapshot.memory_mb, snapshot.architectures)
    unknown = f" ({snapshot.provisioned_note})" if snapshot.provisioned_note.startswith("unavailable") else ""
    message = (
        f"Serves {front} with no provisioned concurrency{unknown} and a heavy start ({'; '.join(heavy)}): "
        f"after a quiet spell users wait for the cold start. For a latency-critical path, keep {slots} "
        f"environments warm with provisioned concurrency on an alias - estimated {pricing.usd(cost)}/month at "
        f"{snapshot.memory_mb} MB ({pricing.PRICE_LIST}); otherwise trim the start (more memory, a smaller "
        f"package, lazy imports)."
    )
    evidence = {"front": front, "memory_mb": snapshot.memory_mb, "package_mb": round(package_mb(snapshot), 1),
                "suggested_pc": slots, "estimated_monthly_pc_usd": round(cost, 2)}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


CHECK = Check(
    id="cold-start-latency",
    footgun="7",
    title="Cold starts on a latency-sensitive (API-fronted) path",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="low",
    evaluate=evaluate,
    params=(
        Param(
            "max_memory_mb", int, 256, "MemorySize at or below this makes a heavy start.", minimum=128, maximum=10240
        ),
        Param(
            "min_package_mb",
            int,
            20,
            "Code + layers over this (MB, zipped) makes a heavy start.",
            minimum=1,
            maximum=250,
        ),
        Param(
            "suggested_pc",
            int,
            2,
            "Provisioned-concurrency slots suggested (and priced) in the message.",
            minimum=1,
            maximum=1000,
        ),
    ),
    needs=frozenset({"routes", "urls", "provisioned"}),
    in_scope=in_scope,
    read_permissions=(
        "lambda:GetPolicy",
        "apigateway:GET",
        "lambda:GetFunctionUrlConfig",
        "lambda:ListFunctionUrlConfigs",
        "lambda:ListProvisionedConcurrencyConfigs",
        "cloudwatch:ListMetrics",
    ),
    triggers=frozenset(
        (
            "UpdateFunctionConfiguration:memorySize",
            "UpdateFunctionConfiguration:layers",
            "UpdateFunctionCode",
            "AddPermission",
            "PutIntegration",
            "UpdateIntegration",
            "CreateIntegration",
            "PutProvisionedConcurrencyConfig",
            "DeleteProvisionedConcurrencyConfig",
            "CreateFunctionUrlConfig",
            "UpdateFunctionUrlConfig",
        )
    ),
)
