"""memory-cpu on moto: AWS Compute Optimizer's recommendation when there is one (GetLambdaFunctionRecommendations
stubbed: moto has no Compute Optimizer), else low MemorySize + long average Duration (GetMetricData), labelled as an
estimate -> approve raising memory."""

from __future__ import annotations

import pytest

from chalicelib.act import fixes
from chalicelib.act.gateway import Gateway
from chalicelib.checks.memory_cpu import evaluate, metrics
from chalicelib.core.aws import Clients
from chalicelib.core.model import AccountFacts, FixSpec, FunctionRef, FunctionSnapshot
from chalicelib.domain import pricing

PARAMS = {"max_memory_mb": 256, "min_avg_duration_ms": 1000, "target_memory_mb": 1024, "lookback_days": 7,
          "min_invocations": 100}


def _history(aws, name, duration_ms, per_hour=10):
    aws.metric_history(name, "Duration", duration_ms, unit="Milliseconds")
    aws.metric_history(name, "Invocations", per_hour, unit="Count")


def _memory_findings(report):
    return [d for d in report.decisions if d.finding.policy == "memory-cpu"]


def test_slow_128_mb_function_asks_approval_to_raise_memory(aws, runtime):
    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True)
    (decision,) = _memory_findings(report)
    assert decision.outcome == "pending-approval" and decision.mode == "approve"
    fix = decision.finding.fix
    assert (fix.action, fix.target, fix.params, fix.prior) == ("set-memory", arn, {"MemorySize": 1024},
                                                               {"MemorySize": 128})
    (approval,) = runtime.store.approvals("PENDING", arn)
    assert approval["policy"] == "memory-cpu" and approval["spec"]["prior"] == {"MemorySize": 128}
    message = decision.finding.message
    assert "average Duration of 3,000 ms over 7 days (470 invocations)" in message
    # Estimates (us-east-1 x86): 3 s x 0.125 GB x $0.0000166667 + $0.0000002 -> $6.45 per million now; CPU-bound
    # at 1024 MB the duration is 8x shorter for the same GB-s -> $6.45; at worst 3 s x 1 GB -> $50.20.
    assert "$6.45 now, about $6.45 at 1024 MB" in message and "(~375 ms)" in message
    assert "at most $50.20 if it only waits on I/O" in message
    assert "Estimated cost per million invocations (AWS list prices, us-east-1): $6.45 now" in message
    # moto has no Compute Optimizer: the estimate says it is one, and why
    assert ("This is an estimate, not a measurement (GetLambdaFunctionRecommendations is not available here): "
            "measure with AWS Lambda Power Tuning") in message
    assert decision.finding.evidence["source"] == "estimate"


def test_approved_fix_raises_memory_and_undo_restores_it(aws):
    arn = aws.function("thumbnailer", memory=128)
    spec = FixSpec("set-memory", arn, {"MemorySize": 1024}, {"MemorySize": 128})
    gateway = Gateway(Clients("us-east-1"))
    fixes.apply(gateway, spec)
    assert aws.client("lambda").get_function(FunctionName=arn)["Configuration"]["MemorySize"] == 1024
    fixes.undo(gateway, spec)
    assert aws.client("lambda").get_function(FunctionName=arn)["Configuration"]["MemorySize"] == 128
    assert [w.operation for w in gateway.log] == ["UpdateFunctionConfiguration"] * 2


@pytest.mark.parametrize("memory, duration, per_hour", [
    (1024, 3000, 10),   # enough memory already
    (128, 400, 10),     # fast enough
    (128, 1000, 10),    # exactly at the threshold
    (256, 3000, 2),     # 94 invocations: too little data
])
def test_does_not_fire(aws, runtime, memory, duration, per_hour):
    aws.function("worker", memory=memory)
    _history(aws, "worker", duration, per_hour)
    assert _memory_findings(runtime.engine("123456789012", "us-east-1").sweep()) == []


def test_no_metrics_no_finding(aws, runtime):
    aws.function("never-invoked", memory=128)
    assert _memory_findings(runtime.engine("123456789012", "us-east-1").sweep()) == []


def test_cost_arithmetic_per_architecture():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), memory_mb=256, architectures=("arm64",))
    duration, invocations = metrics(PARAMS)
    fn.metrics.update({duration: 2000.0, invocations: 1000.0})
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    estimate = finding.evidence["estimate_per_million_usd"]
    # arm64: 2 s x 0.25 GB x $0.0000133334 x 1e6 + $0.20 = $6.8667
    assert estimate["before"] == pytest.approx(2 * 0.25 * 0.0000133334 * 1e6 + 0.2, abs=1e-4)
    assert finding.evidence["estimated_duration_ms"] == 500.0  # 4x the CPU share
    assert estimate["after_cpu_bound"] == pytest.approx(estimate["before"], abs=1e-4)
    assert estimate["after_if_not_cpu_bound"] == pytest.approx(2 * 1.0 * 0.0000133334 * 1e6 + 0.2, abs=1e-4)


def test_cpu_share_stops_at_one_vcpu():
    assert pricing.cpu_bound_duration(3000, 1769, 3538) == 3000
    assert pricing.cpu_bound_duration(3000, 128, 10240) == pytest.approx(3000 * 128 / 1769)


def test_a_target_below_the_current_memory_never_lowers_it():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), memory_mb=2048)
    duration, invocations = metrics(PARAMS)
    fn.metrics.update({duration: 5000.0, invocations: 1000.0})
    assert evaluate(fn, {**PARAMS, "max_memory_mb": 4096, "target_memory_mb": 1024}, AccountFacts()) == []


# -- AWS Compute Optimizer: evidence first --------------------------------------------------------------------


def _optimizer_item(arn, finding="NotOptimized", reasons=("MemoryUnderprovisioned",), memory=512, saving=1.23):
    """A LambdaFunctionRecommendation as botocore's compute-optimizer model shapes it (the Stubber validates it)."""
    option = {"rank": 1, "memorySize": memory, "projectedUtilizationMetrics": [
        {"name": "Duration", "statistic": "Expected", "value": 410.0}]}
    if saving is not None:
        option["savingsOpportunity"] = {"savingsOpportunityPercentage": 12.0,
                                        "estimatedMonthlySavings": {"currency": "USD", "value": saving}}
    return {"functionArn": arn, "functionVersion": "$LATEST", "accountId": "123456789012", "currentMemorySize": 128,
            "numberOfInvocations": 52000, "lookbackPeriodInDays": 14.0, "finding": finding,
            "findingReasonCodes": list(reasons), "memorySizeRecommendationOptions": [option],
            "currentPerformanceRisk": "High"}


def _optimizer(runtime, stub_only, response=None, error=None, expected=None):
    """Stub ONLY GetLambdaFunctionRecommendations (moto has no Compute Optimizer). Read for the candidates the
    estimate found: several read every recommendation once (maxResults 1000); one asks for itself (functionArns)."""
    stubber = stub_only(runtime.clients()("compute-optimizer"), "GetLambdaFunctionRecommendations")
    expected = expected or {"maxResults": 1000}
    if error:
        stubber.add_client_error("get_lambda_function_recommendations", error, "opt in first",
                                 expected_params=expected)
    else:
        stubber.add_response("get_lambda_function_recommendations",
                             {"lambdaFunctionRecommendations": response or []}, expected)
    return stubber


def test_compute_optimizer_memory_is_proposed_with_its_projected_saving(aws, runtime, stub_only, calls):
    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)
    others = [aws.function(f"slow-{i}", memory=128) for i in range(3)]
    for i in range(3):
        _history(aws, f"slow-{i}", 2500)
    aws.function("fast", memory=128)  # not a candidate: Compute Optimizer is not asked about it
    stubber = _optimizer(runtime, stub_only, [_optimizer_item(arn)] + [
        _optimizer_item(o, finding="Optimized", reasons=(), memory=128, saving=None) for o in others])
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep(act=True)
    stubber.assert_no_pending_responses()
    assert calls.calls.count("compute-optimizer.GetLambdaFunctionRecommendations") == 1  # once per run
    (decision,) = _memory_findings(report)  # the three Optimized ones are silenced, whatever the estimate
    assert decision.outcome == "pending-approval"
    fix = decision.finding.fix
    assert (fix.action, fix.params, fix.prior) == ("set-memory", {"MemorySize": 512}, {"MemorySize": 128})
    assert decision.finding.message == (
        "AWS Compute Optimizer finds 128 MB under-provisioned (measured over 14 days) and recommends 512 MB: memory "
        "buys CPU (1 vCPU at 1,769 MB). It projects a saving of $1.23/month (12 %). Raise MemorySize to 512 MB.")
    assert decision.finding.evidence["source"] == "AWS Compute Optimizer"

    gateway = Gateway(Clients("us-east-1"))
    fixes.apply(gateway, fix)
    assert aws.client("lambda").get_function(FunctionName=arn)["Configuration"]["MemorySize"] == 512
    fixes.undo(gateway, fix)
    assert aws.client("lambda").get_function(FunctionName=arn)["Configuration"]["MemorySize"] == 128


def test_an_event_asks_compute_optimizer_for_its_one_function(aws, runtime, stub_only):
    from chalicelib.bot.handlers import handle_event
    from safetycatch.local.cloudtrail import api_call

    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)
    stubber = _optimizer(runtime, stub_only, [_optimizer_item(arn, saving=None)], expected={"functionArns": [arn]})
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn, "memorySize": 128}),
                          runtime=runtime)
    stubber.assert_no_pending_responses()
    (finding,) = [f for f in report["findings"] if f["policy"] == "memory-cpu"]
    assert "It projects no saving: the gain is speed (current performance risk: High)." in finding["message"]


def test_optimized_by_compute_optimizer_silences_the_estimate(aws, runtime, stub_only):
    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)  # the estimate alone would flag it (see the first test)
    _optimizer(runtime, stub_only, [_optimizer_item(arn, finding="Optimized", reasons=(), memory=128, saving=None)],
               expected={"functionArns": [arn]})
    assert _memory_findings(runtime.engine("123456789012", "us-east-1").sweep()) == []


def test_insufficient_data_keeps_the_estimate_and_says_why(aws, runtime, stub_only):
    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)
    _optimizer(runtime, stub_only, [_optimizer_item(arn, finding="Unavailable", reasons=("InsufficientData",),
                                                    memory=128, saving=None)], expected={"functionArns": [arn]})
    (decision,) = _memory_findings(runtime.engine("123456789012", "us-east-1").sweep())
    assert decision.finding.fix.params == {"MemorySize": 1024}
    assert ("This is an estimate, not a measurement (AWS Compute Optimizer has no usable recommendation: "
            "Unavailable, InsufficientData)") in decision.finding.message


def test_an_account_not_opted_in_keeps_the_estimate(aws, runtime, stub_only):
    arn = aws.function("thumbnailer", memory=128)
    _history(aws, "thumbnailer", 3000)
    _optimizer(runtime, stub_only, error="OptInRequiredException", expected={"functionArns": [arn]})
    (decision,) = _memory_findings(runtime.engine("123456789012", "us-east-1").sweep())
    assert "(the account has not opted in to AWS Compute Optimizer)" in decision.finding.message
