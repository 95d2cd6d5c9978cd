"""``make bench``: figures for the sweep and the event path, on a moto server in its own process.

Prints scan throughput (functions/s), peak Python memory of the scan, AWS calls per function in a scan
(counted with botocore event hooks) and AWS calls for one config-change event, plus the handler module's
import time. Budgets: <= 1.5 calls per function in a scan, <= 4 reads for one event. Time to kill (per-function
alarm, sentinel, a second loop under a sentinel already in ALARM) comes from the test world's CloudWatch clock
(bench/time_to_kill.py).

    python bench/bench.py [--sizes 1000,5000] [--events 5000] [--repeat 2] [--storm 2000]

Also replays a burst of events through the handler in-process (events/s, p50/p99 per event, memory), and a deploy
storm (safetycatch/local/storm.py): 10,000 CloudTrail events from a stack updating 2,000 functions through the real
handler under the bot's reserved concurrency with throttling injected (throughput, p50/p99, backlog drain time,
nothing dropped).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import compare, time_to_kill  # noqa: E402
from safetycatch.local.sandbox import FAKE_CREDENTIALS, SandboxAccount, free_port  # noqa: E402

# moto's server with one property of DynamoDB it lacks: each conditional write is atomic (the storm runs 10 writers).
MOTO_SERVER = ("import sys; from safetycatch.local.storm import atomic_dynamodb; from moto.server import main\n"
               "with atomic_dynamodb(): main(sys.argv[1:])")


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto server did not start")


def seed(start: int, n: int) -> None:
    """Functions start..n-1 in the bench account (see :func:`seed_account`)."""
    seed_account(SandboxAccount(), start, n)


def seed_account(account: SandboxAccount, start: int, n: int) -> None:
    """Functions start..n-1: every 10th critical, every 7th fed by SQS, 1 in 25 behind an API (REST or HTTP)."""
    for i in range(start, n):
        tags = {"critical": "true"} if i % 10 == 0 else {"team": f"t{i % 5}"}
        arn = account.function(f"fn-{i:05d}", timeout=30 if i % 25 == 0 else 10, tags=tags)
        if i % 7 == 0:
            account.sqs_mapping(arn, f"queue-{i:05d}")
        if i % 50 == 0:
            account.rest_api(arn, path=f"r{i}")
        elif i % 25 == 0:
            account.http_api(arn, route=f"GET /h{i}")


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def total(self) -> int:
        return sum(self.calls.values())


def runtime_with_counter() -> tuple[Any, CallCounter]:
    from chalicelib.bot.runtime import Runtime

    runtime = Runtime.from_env(str(ROOT / "policies"), mode="enforce", region="us-east-1")
    runtime.account = "123456789012"
    counter = CallCounter()
    runtime.session.events.register("before-call", counter)
    return runtime, counter


def bench_scan(n: int, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        runtime, counter = runtime_with_counter()
        started = time.perf_counter()
        report = runtime.engine("123456789012", "us-east-1").sweep(act=False)
        times.append(time.perf_counter() - started)
    assert report.functions_scanned == n, report.functions_scanned
    runtime, _ = runtime_with_counter()
    tracemalloc.start()
    runtime.engine("123456789012", "us-east-1").sweep(act=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(times)
    print(f"scan of {n} functions: {best:.2f} s (best of {repeat}) = {n / best:,.0f} functions/s; "
          f"{len(report.decisions)} findings")
    print(f"  peak Python memory during the scan: {peak / 2**20:.1f} MiB")
    per_function = counter.total() / n
    verdict = "within" if per_function <= 1.5 else "OVER"
    print(f"  AWS calls: {counter.total()} = {per_function:.3f} per function ({verdict} the 1.5 budget)")
    print("  " + ", ".join(f"{op} {count}" for op, count in counter.calls.most_common()))
    return {"seconds": best, "peak_mib": peak / 2**20, "calls": per_function}


def bench_event() -> None:
    """AWS calls for single config-change events (the client set-up of a cold start is warmed first)."""
    from chalicelib.bot.handlers import handle_event
    from safetycatch.local.cloudtrail import api_call

    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("timeout change, typical function", "UpdateFunctionConfiguration20150331v2",
         {"functionName": "fn-00003", "timeout": 20, "environment": {}}),
        ("timeout change, API-fronted critical function", "UpdateFunctionConfiguration20150331v2",
         {"functionName": "fn-00050", "timeout": 20, "environment": {}}),
        ("memory change, typical function", "UpdateFunctionConfiguration20150331v2",
         {"functionName": "fn-00003", "memorySize": 256, "environment": {}}),
        ("tag change (every policy), API-fronted critical function", "TagResource20170331v2",
         {"resource": "arn:aws:lambda:us-east-1:123456789012:function:fn-00050", "tags": {"team": "t1"}}),
    ]
    runtime, counter = runtime_with_counter()
    runtime.mode = "dry-run"
    handle_event(api_call(cases[0][1], cases[0][2]), runtime=runtime)  # warm the clients
    for label, name, request in cases:
        counter.calls.clear()
        started = time.perf_counter()
        report = handle_event(api_call(name, request), runtime=runtime)
        elapsed = time.perf_counter() - started
        outcomes = ", ".join(f["policy"] for f in report["findings"]) or "no findings"
        verdict = " (within the budget of 4)" if counter.total() <= 4 else " (over 4: every policy re-evaluated)"
        print(f"one event, {label}: {counter.total()} AWS calls{verdict} in {elapsed * 1000:.0f} ms - "
              f"{', '.join(counter.calls)} -> {outcomes}")


def burst_events(n: int, functions: int) -> list[dict[str, Any]]:
    """A realistic mix: timeout and memory changes, tag changes, duplicates (EventBridge delivers at least once),
    the bot's own writes, denied calls."""
    from safetycatch.local.cloudtrail import api_call

    events: list[dict[str, Any]] = []
    for i in range(n):
        name = f"fn-{(i * 7919) % functions:05d}"
        kind = i % 20
        if kind in (3, 4, 5, 6, 7, 8):
            events.append(api_call("UpdateFunctionConfiguration20150331v2",
                                   {"functionName": name, "timeout": 10 + kind, "environment": {}}))
        elif kind == 9:
            events.append(api_call("TagResource20170331v2", {"resource": f"arn:aws:lambda:us-east-1:123456789012:"
                                                             f"function:{name}", "tags": {"team": "t1"}}))
        elif kind == 0:
            events.append(api_call("PutFunctionConcurrency20171031", {"functionName": name,
                                   "reservedConcurrentExecutions": 10}, None, role="safetycatch-bot-role"))
        elif kind == 1:
            events.append(api_call("UpdateFunctionConfiguration20150331v2", None, None, error_code="AccessDenied"))
        elif kind == 2 and events:
            events.append(events[-1])  # EventBridge delivers at least once
        else:
            events.append(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": name, "memorySize": 512}))
    return events


def bench_burst(n: int, functions: int) -> None:
    from chalicelib.bot.handlers import handle_event

    events = burst_events(n, functions)
    runtime, counter = runtime_with_counter()
    runtime.mode = "dry-run"  # measure deciding, not moto's write path; identical reads
    latencies = []
    started = time.perf_counter()
    for event in events:
        t = time.perf_counter()
        handle_event(event, runtime=runtime)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(f"burst of {n} events through the handler (dry-run, in-process, moto over HTTP): {n / elapsed:,.0f} "
          f"events/s; p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; {counter.total() / n:.2f} AWS calls/event")
    runtime, _ = runtime_with_counter()
    runtime.mode = "dry-run"
    tracemalloc.start()
    marks, samples = (min(n, 500), min(n, 2000)), []
    for index, event in enumerate(events[:marks[1]], 1):
        handle_event(event, runtime=runtime)
        if index in marks:
            samples.append(tracemalloc.get_traced_memory()[0] / 2**20)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"  Python memory held after {marks[0]} / {marks[1]} events: {samples[0]:.1f} / {samples[-1]:.1f} MiB "
          f"(peak {peak:.1f} MiB)")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def bench_storm(functions: int, concurrency: int = 10) -> None:
    """A deploy storm (safetycatch/local/storm.py): 5 CloudTrail events per function of a stack, 2% delivered twice,
    through the real handler under the bot's reserved concurrency, throttling on 5% of events' first attempts and on
    every attempt of 0.2%; then ``redrive --fix`` of what was dead-lettered."""
    import tempfile

    from chalicelib.bot.runtime import Runtime
    from safetycatch import redrive
    from safetycatch.local import storm
    from safetycatch.provision import init_state_table

    started = time.perf_counter()
    names, needs_fix = storm.seed_stack(SandboxAccount(), functions)
    print(f"storm: seeded a stack of {functions} functions ({len(needs_fix)} need a fix) in "
          f"{time.perf_counter() - started:.1f} s")
    table = "safetycatch-bench-storm"
    os.environ["SAFETYCATCH_TABLE"] = table
    policies = storm.storm_policies(Path(tempfile.mkdtemp()) / "policies", ROOT / "policies")
    runtime = Runtime.from_env(str(policies), mode="enforce", region="us-east-1")
    runtime.account = "123456789012"
    sqs = runtime.clients()("sqs")
    url = sqs.create_queue(QueueName="safetycatch-bench-dead-letters")["QueueUrl"]
    run = storm.Storm(runtime, sqs, url, concurrency=concurrency, plan=storm.ThrottlePlan(share=0.05, persistent=0.002))
    init_state_table(runtime.clients(), table)
    events = storm.deploy_events(names)
    run.injector.calls = 0
    from chalicelib.core.log import logger

    logger.setLevel("ERROR")  # one warning per injected throttle would bury the figures
    report = run.run(events)
    logger.setLevel("WARNING")
    os.environ.pop("SAFETYCATCH_TABLE", None)
    _print_storm(report, run, len(events), len({e["detail"]["eventID"] for e in events}), functions, concurrency)
    started = time.perf_counter()
    again = redrive.redrive(runtime, sqs, url, acting=True)
    print(f"  redrive --fix: {again.deleted} dead-lettered events handled and deleted, {again.kept} kept, in "
          f"{time.perf_counter() - started:.1f} s; writes of storm + redrive: "
          f"{sum(run.injector.writes.values())} for {len(run.injector.writes)} fixes "
          f"({'each once' if set(run.injector.writes.values()) <= {1} else 'SOME TWICE'}; {len(needs_fix)} needed)")


def _print_storm(report: Any, run: Any, deliveries: int, unique: int, functions: int, concurrency: int) -> None:
    from safetycatch.local import storm

    acted = report.acted()
    problems = report.problems(run.injector.writes)
    ms = [x * 1000 for x in report.latencies]
    print(f"storm: {unique:,} CloudTrail events from a stack updating {functions:,} functions ({deliveries:,} "
          f"deliveries), reserved concurrency {concurrency}, in-process over moto (HTTP)")
    print(f"  throughput {deliveries / report.elapsed:,.0f} events/s; handler p50 {percentile(ms, 0.5):.0f} ms, "
          f"p99 {percentile(ms, 0.99):.0f} ms; backlog drained in {report.elapsed:.1f} s "
          f"(longest wait in the queue {max(report.waits):.1f} s, limit {run.settings.max_age_s} s)")
    print(f"  {len(acted):,} events acted on once, {len(report.handled) - sum(acted.values())} duplicate deliveries, "
          f"{len(report.dead_lettered)} dead-lettered after {run.settings.max_retries + 1} attempts, "
          f"{report.retries} retries ({run.injector.injected} throttled reads injected); "
          f"{run.injector.calls / max(1, len(report.latencies)):.1f} AWS calls per invocation")
    print("  " + ("nothing dropped, nothing written twice" if not problems else "PROBLEMS: " + "; ".join(problems)))
    lambda_ops = [f"{op[len('lambda.'):]} {n:,}" for op, n in run.injector.operations.most_common()
                  if op.startswith("lambda.")]
    floor, quota = storm.quota_floor(run.injector.operations)
    print(f"  Lambda API calls: {', '.join(lambda_ops)}; on AWS the quotas alone need >= {floor:,.0f} s ({quota}) "
          "for this backlog, whatever the concurrency")
    print(f"  on AWS Lambda also waits ~1 then ~2 min before retries: the last retried event ends ~3 min after its "
          f"first failure, far inside the {run.settings.max_age_s // 60} min event age")


def bench_import() -> None:
    from bench.import_time import report

    for line in report(runs=7, custodian=compare.ensure_custodian()):
        print(line)


def run_quota_mode(args: argparse.Namespace, endpoint: str, seeded: int) -> None:
    """The sweep without and with AWS's quotas (the whole-process figures are the latency table's headline)."""
    from bench import quota_bench

    delay = args.latency_ms / 1000
    if delay and args.quota:
        functions, rest, http = (int(part) for part in args.quota.split("x"))
        if functions > seeded:
            seed(seeded, functions)
        quota_bench.quota_table(delay, max(functions, seeded), rest, http)


def run_organisations(args: argparse.Namespace, endpoint: str) -> None:
    """Organisations at the latency mode's delay (bench/compare.py): beside c7n-org, then the large one."""
    from bench import compare

    delay = args.latency_ms / 1000
    if delay and args.org:
        members, per_account = (int(part) for part in args.org.split("x"))
        compare.org_table(endpoint, delay, members, per_account)
    if delay and args.large_org:
        members, regions, per_scope = (int(part) for part in args.large_org.split("x"))
        compare.large_org(delay, members, ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"][:regions],
                          per_scope)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1000,5000"),
                        help="comma-separated estate sizes to scan, in increasing order")
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 5000)))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=float(os.environ.get("BENCH_LATENCY_MS", 25)),
                        help="latency mode: each request waits this long before it is sent (0: skip the mode)")
    parser.add_argument("--org", default=os.environ.get("BENCH_ORG", "10x100"),
                        help="organisation vs c7n-org: MEMBERSxFUNCTIONS ('' to skip)")
    parser.add_argument("--large-org", default=os.environ.get("BENCH_LARGE_ORG", "50x2x200"),
                        help="large organisation: ACCOUNTSxREGIONSxFUNCTIONS ('' to skip)")
    parser.add_argument("--quota", default=os.environ.get("BENCH_QUOTA", "5000x200x100"),
                        help="quota mode: FUNCTIONSxRESTxHTTP APIs, without and with AWS's quotas ('' to skip)")
    parser.add_argument("--storm", type=int, default=int(os.environ.get("BENCH_STORM", 2000)),
                        help="functions in the deploy storm's stack (5 events each); 0 skips it")
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    for key in ("SAFETYCATCH_TABLE", "SAFETYCATCH_POLICIES", "AWS_PROFILE"):
        os.environ.pop(key, None)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    server, endpoint = start_moto()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    from chalicelib.core import quotas

    quotas.configure(enabled=False)  # moto has no quotas: these figures are the bot's own speed (quota mode below)
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        seeded, results = 0, {}
        table = compare.LatencyTable(endpoint, args.latency_ms / 1000, args.repeat) if args.latency_ms else None
        for size in sizes:
            started = time.perf_counter()
            seed(seeded, size)
            print(f"seeded {size - seeded} more functions on a moto server in {time.perf_counter() - started:.1f} s")
            seeded = size
            results[size] = bench_scan(size, args.repeat)
            if table:
                table.measure(size)
                compare.latency.install(0.0)
        if len(sizes) > 1:
            small, large = results[sizes[0]], results[sizes[-1]]
            print(
                f"growth {sizes[0]} -> {sizes[-1]} functions (x{sizes[-1] / sizes[0]:.0f}): time "
                f"x{large['seconds'] / small['seconds']:.1f}, "
                f"peak memory x{large['peak_mib'] / small['peak_mib']:.1f}, "
                f"calls per function {small['calls']:.3f} -> {large['calls']:.3f}"
            )
        bench_event()
        if args.events:
            bench_burst(args.events, seeded)
        if args.storm:
            bench_storm(args.storm)
        bench_import()
        if table:
            table.finish()
        run_quota_mode(args, endpoint, seeded)
        time_to_kill.main()  # in-process moto and the test world's CloudWatch (issue 21)
        compare.alarm_costs()
        run_organisations(args, endpoint)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
