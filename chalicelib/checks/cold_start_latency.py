"""cold-start-latency (footgun 7): cold starts on a user-facing (API-fronted) path.

A function behind a REST API, an HTTP API or a function URL answers people: after a quiet spell the first
request pays the cold start, longer with little memory (little CPU for the init code) or a big package.
Flagged: API-fronted, no provisioned concurrency, no SnapStart, and a heavy start (MemorySize at or below
``max_memory_mb`` or code + layers over ``min_package_mb``).

The cheaper cure first: for runtimes that support Lambda SnapStart (Java 11+, Python 3.12+, .NET 8+), Lambda
resumes new environments from a snapshot taken when a version is published, which removes most of the init
cost. Java pays nothing extra; Python and .NET pay for the snapshot cache and for each restore - the message
prices both against provisioned concurrency (estimates from published prices). SnapStart works on published
versions and aliases only (an API integration on the unqualified function, $LATEST, still pays full cold starts
with SnapStart on: the check says so), and not with provisioned concurrency, Amazon EFS, ephemeral storage over 512 MB
or container images, nor in the Asia Pacific (New Zealand) and (Taipei) Regions: where one of these applies
the message says which. Runtimes that cannot use SnapStart (Node.js, Ruby, OS-only, older versions) get the
other advice only: ``suggested_pc`` provisioned-concurrency slots on an alias (priced), or trim the start
(more memory, smaller package, lazy imports). A sweep sees a function URL only when CloudWatch shows it
served requests in the last two weeks (UrlRequestCount); the event path reads the URL configuration itself.
"""

from __future__ import annotations

import re

from chalicelib.checks.base import API_DEFINITION_CHANGES, Check, Param, Params
from chalicelib.core.model import MB, AccountFacts, Finding, FunctionSnapshot
from chalicelib.domain import pricing

# Managed runtimes SnapStart supports (Lambda developer guide, "Supported features and limitations").
_SNAPSTART_RUNTIME = re.compile(r"^(?:java(?:1[1-9]|[2-9]\d)|python3\.(?:1[2-9]|[2-9]\d)|dotnet(?:[89]|\d\d))$")
SNAPSTART_EXCLUDED_REGIONS = ("ap-southeast-6", "ap-east-2")  # Asia Pacific (New Zealand), (Taipei)


def snapstart_runtime(runtime: str) -> bool:
    """Whether Lambda SnapStart supports the managed runtime.

    Example:
        >>> [snapstart_runtime(r) for r in ("python3.12", "python3.11", "java8.al2", "java21", "dotnet8", "nodejs22.x")]
        [True, False, False, True, True, False]
    """
    return bool(_SNAPSTART_RUNTIME.match(runtime or ""))


def snapstart_blockers(snapshot: FunctionSnapshot) -> list[str]:
    """What stops SnapStart on this function besides its runtime (the documented incompatibilities)."""
    blockers = []
    if snapshot.package_type == "Image":
        blockers.append("it is a container image")
    if snapshot.efs:
        blockers.append("it mounts an Amazon EFS file system")
    if snapshot.ephemeral_mb > 512:
        blockers.append(f"its ephemeral storage is {snapshot.ephemeral_mb} MB (SnapStart allows up to 512 MB)")
    if snapshot.ref.region in SNAPSTART_EXCLUDED_REGIONS:
        blockers.append(f"SnapStart is not offered in {snapshot.ref.region}")
    return blockers


def package_mb(snapshot: FunctionSnapshot) -> float:
    return snapshot.package_bytes / MB


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    """Heavy start: little memory or a big package (read from the configuration, no AWS call)."""
    return snapshot.memory_mb <= params["max_memory_mb"] or package_mb(snapshot) > params["min_package_mb"]


def _front(snapshot: FunctionSnapshot) -> str:
    waited = [r for r in snapshot.routes if r.invocation != "async"]  # no caller waits on an async invocation
    if waited:
        route = waited[0]
        more = f" and {len(waited) - 1} more" if len(waited) > 1 else ""
        return f"{route.api_kind} {route.api_name or route.api_id} ({route.route}){more}"
    return "its function URL" if snapshot.function_url else ""


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag an API-fronted, heavy-start function without provisioned concurrency.

    Example:
        >>> from chalicelib.core.model import ApiRoute, FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("signup", "123456789012", "us-east-1"), memory_mb=128,
        ...                       routes=(ApiRoute("http", "a1", "web", "POST /signup", "AWS_PROXY", 30000),))
        >>> p = {"max_memory_mb": 256, "min_package_mb": 20, "suggested_pc": 2}
        >>> evaluate(fn, p, AccountFacts())[0].evidence["estimated_monthly_pc_usd"]
        2.74
    """
    front = _front(snapshot)
    if snapshot.snapstart == "PublishedVersions":
        return _snapstart_on_latest(snapshot)
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
    snapstart, snap_evidence = _snapstart_advice(snapshot, pricing.usd(cost))
    message = (
        f"Serves {front} with no provisioned concurrency{unknown} and a heavy start ({'; '.join(heavy)}): "
        f"after a quiet spell users wait for the cold start.{snapstart} For a latency-critical path, keep {slots} "
        f"environments warm with provisioned concurrency on an alias - estimated {pricing.usd(cost)}/month at "
        f"{snapshot.memory_mb} MB ({pricing.PRICE_LIST}); otherwise trim the start (more memory, a smaller "
        f"package, lazy imports)."
    )
    evidence = {"front": front, "memory_mb": snapshot.memory_mb, "package_mb": round(package_mb(snapshot), 1),
                "suggested_pc": slots, "estimated_monthly_pc_usd": round(cost, 2), **snap_evidence}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


def _snapstart_on_latest(snapshot: FunctionSnapshot) -> list[Finding]:
    """SnapStart is on, but an API invokes the unqualified function: SnapStart covers published versions only, so
    every cold start there is a full one (Lambda developer guide, "Improving startup performance with SnapStart")."""
    latest = [r for r in snapshot.routes if r.qualifier == ""]
    if not latest:
        return []
    more = f" and {len(latest) - 1} more" if len(latest) > 1 else ""
    message = (f"SnapStart is on, but {latest[0].kind.upper()} API {latest[0].api_name} {latest[0].route}{more} "
               "invokes the unqualified function ($LATEST), which SnapStart never covers: those requests still pay "
               "full cold starts. Point the integration at an alias or a published version "
               "(function ARN with :alias) so it resumes from the snapshot.")
    evidence = {"snapstart": {"on": True, "unqualified_routes": [f"{r.api_id} {r.route}" for r in latest]}}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


def _snapstart_advice(snapshot: FunctionSnapshot, pc_cost: str) -> tuple[str, dict[str, object]]:
    """The SnapStart sentence (cheaper cure first) and its evidence; nothing for runtimes that cannot use it."""
    if not snapstart_runtime(snapshot.runtime):
        return "", {}
    blockers = snapstart_blockers(snapshot)
    if blockers:
        return (f" SnapStart would suit the {snapshot.runtime} runtime, but {'; '.join(blockers)}.",
                {"snapstart": {"eligible": False, "blockers": blockers}})
    cache, restores = pricing.snapstart_monthly(snapshot.memory_mb, snapshot.runtime)
    price = ("at no extra charge for Java" if cache == 0 else
             f"for an estimated {pricing.usd(cache)}/month of snapshot cache per published version plus "
             f"{pricing.usd(restores)} per 1,000 restores")
    text = (f" Cheaper first: turn on SnapStart (the {snapshot.runtime} runtime supports it) - new environments "
            f"resume from a snapshot taken when a version is published, {price}, against {pc_cost}/month for "
            f"provisioned concurrency. It applies to published versions and aliases only (point the API at an "
            f"alias), not with provisioned concurrency, EFS or ephemeral storage over 512 MB; make init code "
            f"safe to resume (unique ids, connections).")
    return text, {"snapstart": {"eligible": True, "estimated_monthly_cache_usd": round(cache, 2),
                                "estimated_usd_per_1000_restores": round(restores, 4)}}


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
            "UpdateFunctionConfiguration:runtime",
            "UpdateFunctionConfiguration:snapStart",
            "UpdateFunctionConfiguration:fileSystemConfigs",
            "UpdateFunctionConfiguration:ephemeralStorage",
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
    ) | frozenset(API_DEFINITION_CHANGES),
)
