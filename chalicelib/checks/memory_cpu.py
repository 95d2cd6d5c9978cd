"""memory-cpu (footgun 10): too little memory for slow (likely CPU-bound) work.

Lambda gives CPU in proportion to memory (one full vCPU at 1,769 MB). A function at 128-256 MB that runs for
seconds is usually starved of CPU: more memory makes CPU-bound work faster for about the same cost, since the
shorter duration offsets the higher per-millisecond price. Flagged: MemorySize at or below ``max_memory_mb``
with an average Duration over the look-back above ``min_avg_duration_ms`` (and enough invocations to trust
it). The fix raises MemorySize to ``target_memory_mb``; a human approves it because work that waits on I/O
does not speed up. The message gives the cost per million invocations before and after: estimates from
published prices (``chalicelib/pricing.py``), assuming the work is CPU-bound, with the bound if it is not.
"""

from __future__ import annotations

from chalicelib import pricing
from chalicelib.checks.base import Check, Param, Params, Rule
from chalicelib.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MetricQuery


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    return snapshot.memory_mb <= params["max_memory_mb"] < params["target_memory_mb"]


def metrics(params: Params) -> list[MetricQuery]:
    days = params["lookback_days"]
    return [MetricQuery("Duration", "Average", days), MetricQuery("Invocations", "Sum", days)]


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Propose MemorySize = target_memory_mb when the average Duration is over min_avg_duration_ms.

    Example:
        >>> from chalicelib.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("thumbs", "123456789012", "us-east-1"), memory_mb=128)
        >>> p = {"max_memory_mb": 256, "min_avg_duration_ms": 1000, "target_memory_mb": 1024,
        ...      "lookback_days": 7, "min_invocations": 100}
        >>> duration, invocations = metrics(p)
        >>> fn.metrics.update({duration: 3000.0, invocations: 5000.0})
        >>> evaluate(fn, p, AccountFacts())[0].fix.params
        {'MemorySize': 1024}
    """
    if not in_scope(snapshot, params):
        return []
    duration_query, invocations_query = metrics(params)
    duration = snapshot.metrics.get(duration_query)
    invocations = snapshot.metrics.get(invocations_query) or 0
    if duration is None or duration <= params["min_avg_duration_ms"] or invocations < params["min_invocations"]:
        return []
    memory, target, arch = snapshot.memory_mb, params["target_memory_mb"], snapshot.architectures
    faster = pricing.cpu_bound_duration(duration, memory, target)
    before = pricing.per_million(duration, memory, arch)
    after = pricing.per_million(faster, target, arch)
    worst = pricing.per_million(duration, target, arch)
    message = (
        f"{memory} MB with an average Duration of {duration:,.0f} ms over {params['lookback_days']} days "
        f"({invocations:,.0f} invocations): memory buys CPU (1 vCPU at 1,769 MB), and this work is likely "
        f"starved of it. Raise MemorySize to {target} MB. Estimated cost per million invocations "
        f"({pricing.PRICE_LIST}): {pricing.usd(before)} now, about {pricing.usd(after)} at {target} MB if the "
        f"work is CPU-bound (~{faster:,.0f} ms), at most {pricing.usd(worst)} if it only waits on I/O."
    )
    evidence = {"avg_duration_ms": round(duration, 1), "invocations": invocations,
                "estimate_per_million_usd": {"before": round(before, 4), "after_cpu_bound": round(after, 4),
                                             "after_if_not_cpu_bound": round(worst, 4)},
                "estimated_duration_ms": round(faster, 1),
                # if CPU-bound: the cost per million saved, at the look-back's rate of invocations over 30 days
                "estimated_monthly_saving_usd": round((before - after) * invocations * 30 / params["lookback_days"]
                                                      / 1e6, 2)}
    return [Finding(CHECK.id, snapshot.arn, "", message,
                    FixSpec("set-memory", snapshot.arn, {"MemorySize": target}, {"MemorySize": memory}), evidence)]


CHECK = Check(
    id="memory-cpu",
    footgun="10",
    title="Memory too low for CPU-bound work",
    doc=__doc__ or "",
    default_mode="approve",
    default_severity="low",
    evaluate=evaluate,
    params=(
        Param("max_memory_mb", int, 256, "Functions at or below this MemorySize are checked.",
              minimum=128, maximum=10240),
        Param("min_avg_duration_ms", int, 1000, "Average Duration (ms) above which the function is flagged.",
              minimum=1, maximum=900_000),
        Param("target_memory_mb", int, 1024, "MemorySize the fix sets (must be above max_memory_mb).",
              minimum=129, maximum=10240),
        Param("lookback_days", int, 7, "Days of Duration history to average.", minimum=1, maximum=63),
        Param("min_invocations", int, 100, "Fewer invocations than this over the look-back: too little data.",
              minimum=1, maximum=1_000_000_000),
    ),
    rules=(Rule("target_memory_mb > max_memory_mb: the fix raises memory, never lowers it",
                ("target_memory_mb", "max_memory_mb"), lambda p: p["target_memory_mb"] > p["max_memory_mb"]),),
    needs=frozenset({"metrics"}),
    in_scope=in_scope,
    metrics=metrics,
    fix_actions=("set-memory",),
    read_permissions=("cloudwatch:GetMetricData",),
    triggers=frozenset(("UpdateFunctionConfiguration:memorySize",)),
)
