"""memory-cpu (footgun 10): too little memory for slow (likely CPU-bound) work.

Lambda gives CPU in proportion to memory (one full vCPU at 1,769 MB). A function at 128-256 MB that runs for
seconds is usually starved of CPU: more memory makes CPU-bound work faster for about the same cost, since the
shorter duration offsets the higher per-millisecond price. The footgun's advice is to measure (AWS Lambda
Power Tuning), so evidence comes first:

* A function is a candidate when its MemorySize is at or below ``max_memory_mb`` and its average Duration over
  the look-back is above ``min_avg_duration_ms`` (with enough invocations to trust it).

* For candidates, AWS Compute Optimizer's recommendation is read (where the account has opted in; it measures
  memory use and duration over up to 14 days). When it finds the memory under-provisioned, the fix proposes
  its recommended MemorySize and the message quotes its projected monthly saving; when it finds the memory
  right (Optimized) or too large, nothing is flagged.

* Otherwise (no recommendation, not opted in, not enough data) the check keeps its estimate, labelled as one:
  the fix raises MemorySize to ``target_memory_mb``, and the message gives the cost per million invocations
  before and after from published prices (``chalicelib/domain/pricing.py``), assuming the work is CPU-bound, with
  the bound if it is not.

A human approves either fix, because work that waits on I/O does not speed up.
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params, Rule
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MemoryRecommendation, MetricQuery
from chalicelib.domain import pricing


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    return snapshot.memory_mb <= params["max_memory_mb"] < params["target_memory_mb"]


def metrics(params: Params) -> list[MetricQuery]:
    days = params["lookback_days"]
    return [MetricQuery("Duration", "Average", days), MetricQuery("Invocations", "Sum", days)]


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Compute Optimizer's memory when it has a recommendation; else MemorySize = target_memory_mb when the
    average Duration is over min_avg_duration_ms (an estimate, labelled so).

    Example:
        >>> from chalicelib.core.model import FunctionRef
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
    estimate = _estimate(snapshot, params, snapshot.memory_recommendation)
    advice = snapshot.memory_recommendation
    if estimate and advice is not None and advice.finding in ("Optimized", "NotOptimized"):
        return _from_compute_optimizer(snapshot, advice)
    return estimate


def _from_compute_optimizer(snapshot: FunctionSnapshot, advice: MemoryRecommendation) -> list[Finding]:
    """Compute Optimizer's verdict: its memory when it finds the function under-provisioned, else nothing."""
    memory = snapshot.memory_mb
    if "MemoryUnderprovisioned" not in advice.reasons or not advice.memory_mb or advice.memory_mb <= memory:
        return []
    if advice.monthly_savings_usd:
        share = f" ({advice.savings_percent:.0f} %)" if advice.savings_percent is not None else ""
        saving = f"It projects a saving of {pricing.usd(advice.monthly_savings_usd)}/month{share}."
    else:
        risk = f" (current performance risk: {advice.performance_risk})" if advice.performance_risk else ""
        saving = f"It projects no saving: the gain is speed{risk}."
    days = f" over {advice.lookback_days:.0f} days" if advice.lookback_days else ""
    message = (f"AWS Compute Optimizer finds {memory} MB under-provisioned (measured{days}) and recommends "
               f"{advice.memory_mb} MB: memory buys CPU (1 vCPU at 1,769 MB). {saving} Raise MemorySize to "
               f"{advice.memory_mb} MB.")
    evidence = {"source": "AWS Compute Optimizer", "recommended_memory_mb": advice.memory_mb,
                "estimated_monthly_savings_usd": advice.monthly_savings_usd,
                "savings_percent": advice.savings_percent, "performance_risk": advice.performance_risk}
    return [Finding(CHECK.id, snapshot.arn, "", message,
                    FixSpec("set-memory", snapshot.arn, {"MemorySize": advice.memory_mb}, {"MemorySize": memory}),
                    evidence)]


def _estimate(snapshot: FunctionSnapshot, params: Params, advice: MemoryRecommendation | None) -> list[Finding]:
    """Today's estimate from the average Duration (no Compute Optimizer evidence), labelled as one."""
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
        f"work is CPU-bound (~{faster:,.0f} ms), at most {pricing.usd(worst)} if it only waits on I/O. "
        f"This is an estimate, not a measurement ({_why_estimate(snapshot, advice)}): measure with AWS Lambda "
        f"Power Tuning, or let Compute Optimizer recommend."
    )
    evidence = {"source": "estimate", "avg_duration_ms": round(duration, 1), "invocations": invocations,
                "estimate_per_million_usd": {"before": round(before, 4), "after_cpu_bound": round(after, 4),
                                             "after_if_not_cpu_bound": round(worst, 4)},
                "estimated_duration_ms": round(faster, 1),
                # if CPU-bound: the cost per million saved, at the look-back's rate of invocations over 30 days
                "estimated_monthly_saving_usd": round((before - after) * invocations * 30 / params["lookback_days"]
                                                      / 1e6, 2)}
    return [Finding(CHECK.id, snapshot.arn, "", message,
                    FixSpec("set-memory", snapshot.arn, {"MemorySize": target}, {"MemorySize": memory}), evidence)]


def _why_estimate(snapshot: FunctionSnapshot, advice: MemoryRecommendation | None) -> str:
    if "recommendations" not in snapshot.loaded:
        return "AWS Compute Optimizer not read yet"
    if "recommendations" in snapshot.unavailable:
        return snapshot.unavailable["recommendations"]
    if advice is not None:
        reasons = ", ".join(advice.reasons) or "no reason given"
        return f"AWS Compute Optimizer has no usable recommendation: {advice.finding}, {reasons}"
    return "AWS Compute Optimizer has no recommendation for it"


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
    finding_needs=frozenset({"recommendations"}),  # read for the candidates only
    in_scope=in_scope,
    metrics=metrics,
    fix_actions=("set-memory",),
    read_permissions=("cloudwatch:GetMetricData", "compute-optimizer:GetLambdaFunctionRecommendations",
                      "lambda:ListFunctions", "lambda:ListProvisionedConcurrencyConfigs"),
    triggers=frozenset(("UpdateFunctionConfiguration:memorySize",)),
)
