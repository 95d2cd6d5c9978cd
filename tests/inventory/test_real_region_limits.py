"""Limits a real region has and moto does not enforce: paginated ListBuckets, and at most 30 concurrent Logs
Insights queries per account (the rest queued)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from chalicelib.core.model import LogSearch
from chalicelib.inventory import Inventory
from chalicelib.inventory import logs as log_reader

ENOSPC = "[ERROR] OSError: [Errno 28] No space left on device: '/tmp/frame.png'"


def test_list_buckets_is_always_paginated_with_a_page_size(aws, runtime, calls):
    """AWS refuses an unpaginated ListBuckets for accounts with a bucket quota above 10,000."""
    seen = []
    runtime.session.events.register("provide-client-params.s3.ListBuckets",
                                    lambda params, **_: seen.append(dict(params)))
    for i in range(3):
        aws.client("s3").create_bucket(Bucket=f"uploads-{i}")
    engine = runtime.engine("123456789012", "us-east-1")
    engine.inventory.triggers.bucket_deliveries(None)
    assert seen and all(p.get("MaxBuckets") == 1000 for p in seen), seen
    assert set(engine.inventory.triggers._buckets) == {"uploads-0", "uploads-1", "uploads-2"}


class InFlight:
    """Counts the account's running Logs Insights queries, as AWS would: started until their results say done."""

    def __init__(self) -> None:
        self.lock, self.now, self.peak, self.started = threading.Lock(), 0, 0, 0

    def watch(self, client) -> None:
        client.meta.events.register("after-call.logs.StartQuery", self._started)
        client.meta.events.register("after-call.logs.GetQueryResults", self._answered)

    def _started(self, **_) -> None:
        with self.lock:
            self.now, self.started = self.now + 1, self.started + 1
            self.peak = max(self.peak, self.now)

    def _answered(self, parsed, **_) -> None:
        if parsed.get("status") not in ("Scheduled", "Running"):
            with self.lock:
                self.now -= 1


def _log_estate(aws, count: int, prefix: str = "fn") -> None:
    for i in range(count):
        aws.function(f"{prefix}-{i}")
        aws.log_lines(f"{prefix}-{i}", [ENOSPC] if i % 5 == 0 else ["START", "END"])


def _search(inventory: Inventory) -> list:
    snapshots = list(inventory.all_functions())
    search = LogSearch(("No space left on device", "ENOSPC"), 24)
    inventory.load({"logs": snapshots}, {}, {s.arn: search for s in snapshots})
    return snapshots


@pytest.fixture
def one_group_per_query(monkeypatch):
    """One log group per query, so that a few dozen functions need more queries than the account may run."""
    monkeypatch.setattr(log_reader, "INSIGHTS_MAX_GROUPS", 1)


def test_at_most_half_the_accounts_insights_queries_run_at_once_and_the_rest_wait(aws, runtime, one_group_per_query):
    _log_estate(aws, 55)
    inventory = Inventory(runtime.clients("us-east-1"), "123456789012", sleep=lambda seconds: None)
    in_flight = InFlight()
    in_flight.watch(inventory.clients("logs"))
    snapshots = _search(inventory)
    assert in_flight.started == 55 and in_flight.peak == 50 and in_flight.now == 0
    assert sorted(s.name for s in snapshots if s.log_hits.count) == sorted(f"fn-{i}" for i in range(0, 55, 5))
    assert not any(s.unavailable.get("logs") for s in snapshots)
    assert log_reader.insights_slots("123456789012")._value == 50, "every slot given back"


def test_the_bound_is_per_account_across_regions_swept_at_once(aws, runtime, one_group_per_query):
    from safetycatch.local.sandbox import SandboxAccount

    _log_estate(aws, 35)
    _log_estate(SandboxAccount(region="eu-west-1"), 35, prefix="eu")
    in_flight = InFlight()
    inventories = [Inventory(runtime.clients(region), "123456789012", sleep=lambda seconds: None)
                   for region in ("us-east-1", "eu-west-1")]
    for inventory in inventories:
        in_flight.watch(inventory.clients("logs"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_search, inventories))
    assert in_flight.started == 70 and in_flight.peak <= 50
    assert [sum(1 for s in found if s.log_hits.count) for found in results] == [7, 7]


def test_a_query_refused_as_over_the_account_limit_waits_for_a_slot(aws, runtime, one_group_per_query):
    """Other users of the account may hold queries too: AWS then answers LimitExceededException, and the query
    waits for one of ours to finish instead of failing the sweep."""
    _log_estate(aws, 3)
    inventory = Inventory(runtime.clients("us-east-1"), "123456789012", sleep=lambda seconds: None)
    logs = inventory.clients("logs")
    start, refused = logs.start_query, []

    def busy_once(**kwargs):
        if len(refused) == 0 and kwargs["logGroupNames"] == ["/aws/lambda/fn-1"]:
            refused.append(kwargs["logGroupNames"])
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "too many queries"}},
                              "StartQuery")
        return start(**kwargs)

    logs.start_query = busy_once
    snapshots = _search(inventory)
    assert refused == [["/aws/lambda/fn-1"]]
    assert [s.log_hits.count for s in sorted(snapshots, key=lambda s: s.name)] == [1, 0, 0]
    assert not any(s.unavailable.get("logs") for s in snapshots)
    assert log_reader.insights_slots("123456789012")._value == 50
