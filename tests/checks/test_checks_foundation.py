"""The three foundation checks as pure functions: each fires, and each stays quiet when it should."""

from __future__ import annotations

import pytest

from chalicelib.checks import REGISTRY
from chalicelib.core.model import AccountFacts, ApiRoute, EventSourceMapping, FunctionRef, FunctionSnapshot, MetricQuery

REF = FunctionRef("example-fn", "123456789012", "us-east-1")


def snap(**kw) -> FunctionSnapshot:
    return FunctionSnapshot(REF, **kw)


def run(policy: str, snapshot: FunctionSnapshot, account: AccountFacts | None = None, **params):
    check = REGISTRY[policy]
    return check.evaluate(snapshot, {**check.defaults(), **params}, account or AccountFacts())


REST = ApiRoute("rest", "k7q2", "orders", "GET /orders", "AWS_PROXY", 29000)
HTTP = ApiRoute("http", "r9w3", "orders-http", "POST /orders", "AWS_PROXY", 30000)


class TestApigwTimeout:
    def test_rest_default_gets_25s(self):
        (finding,) = run("apigw-timeout", snap(timeout_s=30, routes=(REST,)))
        assert finding.fix.params == {"Timeout": 25} and finding.fix.prior == {"Timeout": 30}
        assert "GET /orders" in finding.message

    def test_http_api_default_gets_26s(self):
        (finding,) = run("apigw-timeout", snap(timeout_s=30, routes=(HTTP,)))
        assert finding.fix.params == {"Timeout": 26}

    def test_tightest_integration_wins(self):
        short = ApiRoute("rest", "a", "a", "GET /fast", "AWS", 10000)
        (finding,) = run("apigw-timeout", snap(timeout_s=20, routes=(HTTP, short)))
        assert finding.fix.params == {"Timeout": 6} and "GET /fast" in finding.message

    @pytest.mark.parametrize("timeout", [1, 24, 25])
    def test_at_or_under_the_limit_is_quiet(self, timeout):
        assert run("apigw-timeout", snap(timeout_s=timeout, routes=(REST,))) == []

    def test_no_integration_is_never_flagged_however_long(self):
        assert run("apigw-timeout", snap(timeout_s=900)) == []

    def test_buffer_is_a_param(self):
        (finding,) = run("apigw-timeout", snap(timeout_s=28, routes=(REST,)), buffer_seconds=2)
        assert finding.fix.params == {"Timeout": 27}


def mapping(source: str, batch: int = 10, types: tuple[str, ...] = ()) -> EventSourceMapping:
    return EventSourceMapping("53610531-7abb-4365-a8b0-d675911bc925", source, REF.arn, batch, types, "Enabled")


class TestBatchPartialFailure:
    @pytest.mark.parametrize("source", [
        "arn:aws:sqs:us-east-1:123456789012:orders-queue",
        "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2025-06-10T00:00:00.000",
    ])
    def test_batching_sources_fire(self, source):
        (finding,) = run("batch-partial-failure", snap(mappings=(mapping(source),)))
        assert finding.fix.action == "report-batch-item-failures"
        assert finding.fix.params == {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
        assert "batchItemFailures" in finding.message

    def test_already_reporting_is_quiet(self):
        m = mapping("arn:aws:sqs:us-east-1:123456789012:q", types=("ReportBatchItemFailures",))
        assert run("batch-partial-failure", snap(mappings=(m,))) == []

    def test_batch_of_one_is_quiet(self):
        assert run("batch-partial-failure", snap(mappings=(mapping("arn:aws:sqs:us-east-1:1:q", batch=1),))) == []

    def test_other_sources_are_quiet(self):
        m = mapping("arn:aws:kafka:us-east-1:123456789012:cluster/c/1")
        assert run("batch-partial-failure", snap(mappings=(m,))) == []

    def test_one_finding_per_mapping(self):
        ms = (mapping("arn:aws:sqs:us-east-1:1:a"), mapping("arn:aws:sqs:us-east-1:1:b"))
        assert len(run("batch-partial-failure", snap(mappings=ms))) == 2


PEAK = MetricQuery("ConcurrentExecutions", "Maximum", 14)


def critical(peak: float | None = None, reserved: int | None = None, tags=None) -> FunctionSnapshot:
    s = snap(tags=tags if tags is not None else {"critical": "true"}, reserved_concurrency=reserved)
    s.metrics[PEAK] = peak
    return s


class TestReservedConcurrency:
    def test_sized_from_peak_with_headroom(self):
        (finding,) = run("reserved-concurrency", critical(peak=42))
        assert finding.fix.params == {"ReservedConcurrentExecutions": 63}
        assert finding.fix.prior == {"ReservedConcurrentExecutions": None}

    def test_minimum_when_quiet(self):
        (finding,) = run("reserved-concurrency", critical(peak=None))
        assert finding.fix.params == {"ReservedConcurrentExecutions": 10}
        assert "no ConcurrentExecutions data" in finding.message

    def test_never_leaves_the_unreserved_pool_under_100(self):
        (finding,) = run("reserved-concurrency", critical(peak=120), AccountFacts(1000, 250))
        assert finding.fix.params == {"ReservedConcurrentExecutions": 150}

    def test_never_below_the_peak(self):
        (finding,) = run("reserved-concurrency", critical(peak=300), AccountFacts(1000, 350))
        assert finding.fix is None and "No safe cap" in finding.message

    def test_says_when_the_account_limit_cannot_be_read(self):
        (finding,) = run("reserved-concurrency", critical(peak=10),
                         AccountFacts(unavailable="GetAccountSettings is not available here"), account_limit=500)
        assert "assumed 500" in finding.message and "not available" in finding.message

    def test_uses_the_account_limit_when_readable(self):
        (finding,) = run("reserved-concurrency", critical(peak=900), AccountFacts(concurrency_limit=1000))
        assert finding.fix.params == {"ReservedConcurrentExecutions": 900}

    @pytest.mark.parametrize("tags, reserved", [({}, None), ({"critical": "false"}, None),
                                                ({"critical": "true"}, 50), ({"critical": "true"}, 0)])
    def test_quiet_when_not_critical_or_already_reserved(self, tags, reserved):
        assert run("reserved-concurrency", critical(peak=5, reserved=reserved, tags=tags)) == []

    def test_tag_key_is_configurable(self):
        s = critical(peak=5, tags={"tier": "gold"})
        assert run("reserved-concurrency", s) == []
        assert len(run("reserved-concurrency", s, tag_key="tier", tag_value="gold")) == 1
