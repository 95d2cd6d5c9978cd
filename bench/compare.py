"""``make bench``'s latency mode: safetycatch beside Cloud Custodian on the same moto server, with every AWS
request of both waiting ``--latency-ms`` before it is sent (bench/latency.py), as a stand-in for a real
endpoint's round trip; and organisations through the member role beside c7n-org.

Cloud Custodian 0.9.53 and c7n-org run from their own venv (build/bench-venv, created on first use with
pip; never in the requirements files), with the five ``aws.lambda`` policies of bench/custodian.yml.
Both tools' times run from the start of the scan to its end, after imports; requests are every request sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import latency

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / "build" / "bench-venv"
CUSTODIAN = ("c7n==0.9.53", "c7n-org==0.6.52")
POLICIES = ROOT / "bench" / "custodian.yml"
ACCOUNT = "123456789012"


def ensure_custodian() -> Path | None:
    """The bench venv's python with Cloud Custodian installed (pip, on first use); None if it cannot be had."""
    python = BENCH_VENV / "bin" / "python"
    if (BENCH_VENV / "bin" / "c7n-org").exists():
        return python
    print(f"installing {' and '.join(CUSTODIAN)} into {BENCH_VENV.relative_to(ROOT)} (bench only) ...", flush=True)
    if subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)]).returncode or subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *CUSTODIAN]).returncode:
        print("  Cloud Custodian could not be installed: the comparison is skipped")
        return None
    return python


def run_custodian(python: Path, endpoint: str, delay: float, tool: str, args: list[str]) -> dict[str, float]:
    """Run ``custodian run`` or ``c7n-org run`` on the moto server: seconds and requests (all processes)."""
    with tempfile.TemporaryDirectory() as tmp:
        log, out = Path(tmp, "requests"), Path(tmp, "result.json")
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "BENCH_REQUEST_LOG": str(log), "C7N_OUTPUT_DIR": tmp}
        args = [a.replace("{tmp}", tmp) for a in args]
        done = subprocess.run([str(python), str(ROOT / "bench" / "custodian_run.py"), str(out), str(delay), tool,
                               *args], env=env, capture_output=True, text=True)
        if done.returncode or not out.exists():
            raise SystemExit(f"{tool} failed: {done.stderr.strip()[-600:]}")
        result = json.loads(out.read_text())
        result["requests"] = log.stat().st_size if log.exists() else result["requests"]
        return result


def custodian_scan(python: Path, endpoint: str, delay: float) -> dict[str, float]:
    """The five policies over the bench account (a fresh resource cache: shared between policies, not runs)."""
    return run_custodian(python, endpoint, delay, "custodian", [
        "run", "-s", "{tmp}/out", "--region", "us-east-1", "--cache", "{tmp}/cache.pkl", str(POLICIES)])


def c7n_org_scan(python: Path, endpoint: str, delay: float, accounts: list[str], role: str) -> dict[str, float]:
    """The five policies through each member's role, with c7n-org's default parallelism."""
    config = {"accounts": [{"account_id": a, "name": f"member-{a}", "role": f"arn:aws:iam::{a}:role/{role}",
                            "regions": ["us-east-1"]} for a in accounts]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    try:
        return run_custodian(python, endpoint, delay, "c7n-org", [
            "run", "-c", handle.name, "-s", "{tmp}/out", "-u", str(POLICIES), "--cache-path", "{tmp}"])
    finally:
        os.unlink(handle.name)


def timed(run: Callable[[], Any]) -> tuple[float, int, Any]:
    """Seconds and requests sent while ``run()`` ran (this process)."""
    sent, started = latency.sent[0], time.perf_counter()
    result = run()
    return time.perf_counter() - started, latency.sent[0] - sent, result


def new_runtime() -> Any:
    from chalicelib.bot.runtime import Runtime

    runtime = Runtime.from_env(str(ROOT / "policies"), mode="enforce", region="us-east-1")
    runtime.account = ACCOUNT
    return runtime


def safetycatch_scan(delay: float, n: int, runtime: Any = None) -> tuple[float, int]:
    """One sweep of the bench account: a fresh engine (nothing read yet) on ``runtime`` (a warm container's:
    its clients built), or on a fresh runtime (a cold start: the clients are built in the timing)."""
    latency.install(delay)
    runtime = runtime or new_runtime()
    seconds, requests, report = timed(lambda: runtime.engine(ACCOUNT, "us-east-1").sweep(act=False))
    assert report.functions_scanned == n, report.functions_scanned
    return seconds, requests


def safetycatch_org(delay: float, accounts: list[str], regions: list[str]) -> tuple[float, int, dict[str, Any]]:
    """One organisation sweep through each member's role (every scope at once, as ``scan --accounts``)."""
    from chalicelib.bot.runtime import Runtime
    from chalicelib.org.scopes import Scope, sweep_scopes

    latency.install(delay)
    runtime = Runtime.from_env(str(ROOT / "policies"), mode="enforce", region="us-east-1")
    runtime.account = ACCOUNT
    scopes = [Scope(a, r) for a in accounts for r in regions]
    return timed(lambda: sweep_scopes(runtime, scopes, act=False, workers=len(scopes)))


def seed_members(accounts: list[str], regions: list[str], per_scope: int) -> None:
    """``per_scope`` functions in each member account and region (the bench estate's mix), in parallel."""
    from bench.bench import seed_account
    from safetycatch.local.sandbox import member_sandbox

    def one(account: str) -> None:  # an account's regions one after another: they share its IAM role
        for region in regions:
            seed_account(member_sandbox(account, region), 0, per_scope)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, accounts))


def member_ids(count: int, first: int = 100000000001) -> list[str]:
    """``count`` member account ids (12 digits), distinct from the bench account."""
    return [f"{first + i:012d}" for i in range(count)]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


class LatencyTable:
    """The side-by-side table at ``delay``: a row per estate size as the bench grows the account, then the
    1,000-function ratio without latency (both tools warmed first) and the targets."""

    def __init__(self, endpoint: str, delay: float, repeat: int) -> None:
        self.endpoint, self.delay, self.repeat = endpoint, delay, repeat
        self.python = ensure_custodian()
        self.figures: dict[str, Any] = {}
        print(f"\nlatency mode: every AWS request waits {delay * 1000:.0f} ms before it is sent "
              "(botocore before-send hook, both tools). safetycatch: best of a warm container's sweeps (clients "
              "built, nothing read), and its cold first sweep; Cloud Custodian: a fresh process, timed after "
              "imports")
        print(f"  {'estate':<30}{'safetycatch':>32}{'Cloud Custodian 0.9.53':>34}{'ratio':>8}")

    def measure(self, size: int) -> None:
        """A row for the account as it is now (``size`` functions); Cloud Custodian up to 1,000 functions."""
        cold, runtime = safetycatch_scan(self.delay, size), new_runtime()
        safetycatch_scan(self.delay, size, runtime)  # builds the container's clients
        best = min((safetycatch_scan(self.delay, size, runtime) for _ in range(self.repeat)), key=lambda r: r[0])
        print(f"  ({size:,} functions: safetycatch's cold first sweep {cold[0]:.2f} s)")
        other = custodian_scan(self.python, self.endpoint, self.delay) if self.python and size <= 1000 else None
        self.figures[str(size)] = (best, other)
        _row(f"{size:,} functions, {self.delay * 1000:.0f} ms", best, size, other)
        if size == 1000:
            from bench import quota_bench

            print("  as a user runs it (the headline; bench/quota_bench.py):")
            quota_bench.whole_process(self.endpoint, self.delay, size, self.python)
        if size == 1000 and self.python:
            safetycatch_scan(0.0, size), custodian_scan(self.python, self.endpoint, 0.0)  # warm moto for both
            best = min((safetycatch_scan(0.0, size, runtime) for _ in range(self.repeat)), key=lambda r: r[0])
            other = custodian_scan(self.python, self.endpoint, 0.0)
            self.figures["0ms"] = (best, other)
            _row("1,000 functions, no latency", best, size, other)
            latency.install(self.delay)

    def finish(self) -> None:
        _targets(self.figures)


def _row(label: str, ours: tuple[float, int], n: int, other: dict[str, float] | None) -> None:
    mine = f"{ours[0]:6.2f} s {ours[1]:>6,} req ({ours[1] / n:.3f}/fn)"
    theirs = f"{other['seconds']:6.2f} s {int(other['requests']):>6,} req ({other['requests'] / n:.2f}/fn)" \
        if other else "(not run)"
    ratio = f"{other['seconds'] / ours[0]:6.1f}x" if other else ""
    print(f"  {label:<28}{mine:>30}{theirs:>34}{ratio:>8}")


def _targets(figures: dict[Any, Any]) -> None:
    lines = []
    if "1000" in figures:
        (seconds, requests), other = figures["1000"]
        lines.append(f"1,000 functions <= 2 s at 25 ms: {seconds:.2f} s, {verdict(seconds <= 2)}")
        lines.append(f"requests per function <= 0.25: {requests / 1000:.3f}, {verdict(requests / 1000 <= 0.25)}")
        if other:
            ratio = other["seconds"] / seconds
            lines.append(f"ratio to Cloud Custodian >= 10 at 25 ms: {ratio:.1f}, {verdict(ratio >= 10)}")
    if "5000" in figures:
        seconds = figures["5000"][0][0]
        lines.append(f"5,000 functions <= 6 s at 25 ms: {seconds:.2f} s, {verdict(seconds <= 6)}")
    if "0ms" in figures and figures["0ms"][1]:
        (seconds, _), other = figures["0ms"]
        ratio = other["seconds"] / seconds
        lines.append(f"ratio to Cloud Custodian >= 5 without latency: {ratio:.1f}, {verdict(ratio >= 5)}")
    for line in lines:
        print(f"  target: {line}")


def org_table(endpoint: str, delay: float, members: int, per_account: int) -> None:
    """An organisation beside c7n-org: ``members`` accounts x ``per_account`` functions, through the role."""
    python = ensure_custodian()
    accounts = member_ids(members)
    started = time.perf_counter()
    seed_members(accounts, ["us-east-1"], per_account)
    print(f"\norganisation: {members} member accounts x {per_account} functions seeded in "
          f"{time.perf_counter() - started:.0f} s; through the member role, {delay * 1000:.0f} ms per request")
    seconds, requests, report = safetycatch_org(delay, accounts, ["us-east-1"])
    assert report["functions_scanned"] == members * per_account, report["functions_scanned"]
    line = f"  safetycatch {seconds:6.2f} s, {requests:,} requests"
    if python:
        other = c7n_org_scan(python, endpoint, delay, accounts, "safetycatch-remediation")
        ratio = other["seconds"] / seconds
        line += (f"; c7n-org {other['seconds']:6.2f} s, {int(other['requests']):,} requests: {ratio:.1f}x "
                 f"(goal >= 5x: {verdict(ratio >= 5)})")
    print(line)
    org_with_quotas(delay, accounts)


def scope_lower_bound(layer: Any, share: float) -> tuple[float, str]:
    """The quotas' lower bound of a sweep whose scopes run at once: quotas are per account and region, so the
    slowest scope's (bench/quota_bench.py's ``lower_bound`` applied to each scope's requests)."""
    best, limiting = 0.0, "no quota limits"
    for (_key, _region, name), times in layer.accepted.items():
        quota = layer.quotas[name]
        seconds = max(0.0, len(times) - share * quota.burst) / (share * quota.rate)
        if seconds > best:
            best, limiting = seconds, f"{name}: {len(times)} requests in one scope at {share * quota.rate:g}/s"
    return best, limiting


def org_with_quotas(delay: float, accounts: list[str]) -> None:
    """The same organisation sweep under AWS's quotas (tests/world/aws_quotas.py, per member account) with the bot's
    pacing at ``max_quota_share``: time, throttled requests, the quotas' lower bound, the peak shares."""
    from chalicelib.core import quotas
    from tests.world.aws_quotas import QuotaLayer

    pacer = quotas.configure(share=quotas.DEFAULT_SHARE, clock=quotas.RealClock(), enabled=True)
    layer = QuotaLayer(clock=pacer.clock)
    try:
        with layer.installed():
            seconds, requests, report = safetycatch_org(delay, accounts, ["us-east-1"])
    finally:
        quotas.configure(enabled=False)
    bound, limiting = scope_lower_bound(layer, pacer.share)
    peaks = sorted(layer.peak_share().items(), key=lambda item: -item[1])[:4]
    print(f"  with AWS's quotas (max_quota_share {pacer.share:g}): safetycatch {seconds:6.2f} s, {requests:,} "
          f"requests, {len(report['errors'])} errors, {sum(layer.throttled.values())} throttled, "
          f"{report['functions_scanned']} functions; lower bound {bound:.1f} s ({limiting}); peak shares "
          + ", ".join(f"{name} {share:.2f}" for name, share in peaks))


def large_org(delay: float, members: int, regions: list[str], per_scope: int) -> None:
    """The organisation of issue 12's bench: ``members`` x ``regions`` x ``per_scope`` functions, one moto."""
    accounts = member_ids(members, first=200000000001)
    started = time.perf_counter()
    seed_members(accounts, regions, per_scope)
    total = members * len(regions) * per_scope
    print(f"\nlarge organisation: {members} accounts x {len(regions)} regions x {per_scope} functions = {total:,} "
          f"functions seeded in {time.perf_counter() - started:.0f} s")
    seconds, requests, report = safetycatch_org(delay, accounts, regions)
    assert report["functions_scanned"] == total, report["functions_scanned"]
    scopes = members * len(regions)
    print(f"  safetycatch at {delay * 1000:.0f} ms: {seconds:.1f} s wall, {requests:,} requests "
          f"({requests / scopes:.0f} per scope, {requests / total:.3f} per function), "
          f"{len(report['errors'])} errors; projection to 1,000 accounts x 4 regions: docs/organisation-scale.md")


# CloudWatch list prices, US East (N. Virginia), from https://aws.amazon.com/cloudwatch/pricing/ (Alarms):
# a standard-resolution (60 s) alarm costs $0.10 per alarm metric a month, and an alarm on a Metrics Insights
# query is charged for each metric the query analyzes, at the same rate. The first 10 alarm metrics a month are
# free for standard alarms only (left out here: per 1,000 functions it is noise).
USD_PER_ALARM_METRIC = 0.10


def alarm_costs(functions: int = 1000, reserved_share: float = 0.1) -> None:
    """Alarms and monthly alarm cost for ``functions`` functions under the kill-switch: one metric-math alarm
    each (chalicelib/domain/alarms.py) against the sentinels (chalicelib/killswitch/sentinel.py). Per-function
    ConcurrentExecutions series exist only for functions with reserved concurrency (``reserved_share`` of them)."""
    from chalicelib.domain import alarms
    from chalicelib.killswitch import sentinel

    spec = alarms.alarm_spec("f", alarms.Thresholds(5000, 500, True, 2))
    per_alarm = sum(1 for m in spec["Metrics"] if "MetricStat" in m)
    sentinels = sentinel.sentinel_specs(5000, 500, 2)
    analyzed = functions + int(functions * reserved_share)  # Invocations of each, ConcurrentExecutions of some
    rows = [("per-function alarms", functions, functions * per_alarm),
            ("sentinel alarms", len(sentinels), analyzed)]
    print(f"\nkill-switch alarms per {functions:,} functions (CloudWatch list price, us-east-1, "
          f"${USD_PER_ALARM_METRIC:.2f} per alarm metric a month; https://aws.amazon.com/cloudwatch/pricing/):")
    for label, count, metrics in rows:
        print(f"  {label:<22}{count:>6,} alarms {metrics:>7,} alarm metrics  ${metrics * USD_PER_ALARM_METRIC:>8,.2f}"
              " a month")
    print(f"  a sentinel query analyzes up to 10,000 metrics and returns the {sentinel.SERIES_PER_ALARM} busiest "
          "series; 200 Metrics Insights alarms per account and region")
