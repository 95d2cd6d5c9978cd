"""The inventory's structure and parallel reads (issues 12 and 14): composed readers in an explicit facet order,
bounded parallelism per scope and service, tags read whole, account facts cached per container."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.checks.base import FACETS as DECLARABLE
from chalicelib.core.aws import IN_FLIGHT, Clients
from chalicelib.inventory import FACETS, Inventory, read_in_order
from safetycatch.local.cloudtrail import api_call


def test_every_facet_a_check_may_declare_has_a_reader_and_known_predecessors():
    assert set(FACETS) == set(DECLARABLE)
    assert all(facet.after <= set(FACETS) for facet in FACETS.values())
    assert FACETS["urls"].after == {"routes"}, "one function's URL is read only when no route fronts it"


def test_a_facet_waits_only_for_those_it_comes_after_and_failures_are_returned():
    order: list[str] = []

    def fail() -> None:
        order.append("routes")
        raise RuntimeError("boom")

    failed = read_in_order({"urls": lambda: order.append("urls"), "routes": fail},
                           {"urls": frozenset({"routes"})})
    assert order == ["routes", "urls"] and list(failed) == ["routes"]


def test_a_facet_waits_for_one_still_running_not_only_for_one_not_started():
    """``urls`` comes after ``routes``: while ``routes`` still reads (here it waits for ``urls`` to give it a
    sign, which only a wrongly early ``urls`` can give), ``urls`` must not start, even once another facet
    (``metrics``) has finished and the scheduler looks again."""
    order: list[str] = []
    early = threading.Event()

    def routes() -> None:
        early.wait(timeout=0.5)  # the outcome never depends on this time: a correct scheduler makes it wait it out
        order.append("routes")

    def urls() -> None:
        order.append("urls")
        early.set()

    failed = read_in_order({"routes": routes, "urls": urls, "metrics": lambda: order.append("metrics")},
                           {"urls": frozenset({"routes"})})
    assert failed == {} and order.index("routes") < order.index("urls"), order


def test_parallel_reads_keep_order_and_never_exceed_the_scope_s_cap_for_a_service():
    clients, lock, active, peak = Clients("us-east-1"), threading.Lock(), [0], [0]

    def read(n: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)  # lets reads overlap; the assertion is an upper bound, true however fast the machine
        with lock:
            active[0] -= 1
        return n * 2

    assert clients.parallel("apigateway", read, range(40)) == [n * 2 for n in range(40)]
    assert 1 <= peak[0] <= IN_FLIGHT["apigateway"]


def test_the_first_error_of_a_parallel_read_is_raised_after_all_ran():
    ran: list[int] = []

    def read(n: int) -> None:
        ran.append(n)
        if n == 3:
            raise ValueError("bad item")

    with pytest.raises(ValueError, match="bad item"):
        Clients("us-east-1").parallel("lambda", read, range(10))
    assert sorted(ran) == list(range(10))


def test_tags_of_many_functions_are_read_whole(aws, runtime):
    """Over a hundred ARNs: chunks of 100, and moto's 50-per-page answer followed to the end."""
    arns = [aws.function(f"fn-{i:03d}", tags={"team": f"t{i}"}) for i in range(120)]
    tags = Inventory(runtime.clients("us-east-1"), "123456789012").tags_of(arns)
    assert len(tags) == 120 and tags[arns[119]] == {"team": "t119"}


def test_a_sweep_sees_every_function_s_tags(aws, runtime):
    for i in range(130):
        aws.function(f"fn-{i:03d}", tags={"critical": "true"} if i % 2 else {})
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False, batch=50)
    assert report.functions_scanned == 130
    assert sum(d.finding.policy == "reserved-concurrency" for d in report.decisions) == 65


def test_account_facts_are_read_once_per_container_for_a_burst_of_events(aws, runtime, calls):
    arn = aws.function("orders-api", tags={"critical": "true"})
    for team in ("a", "b", "c"):
        handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"team": team}}), runtime=runtime)
    assert calls.calls.count("lambda.GetAccountSettings") == 1
