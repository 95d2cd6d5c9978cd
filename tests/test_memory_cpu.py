"""memory-cpu on moto: low MemorySize + long average Duration (GetMetricData) -> approve raising memory."""

from __future__ import annotations

import pytest

from chalicelib import fixes, pricing
from chalicelib.aws import Clients
from chalicelib.checks.memory_cpu import evaluate, metrics
from chalicelib.gateway import Gateway
from chalicelib.model import AccountFacts, FixSpec, FunctionRef, FunctionSnapshot

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
