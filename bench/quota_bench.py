"""``make bench``'s quota mode and the figures a user sees.

* :func:`quota_table`: one account of ``functions`` functions with ``rest`` REST and ``http`` HTTP APIs, at the
  latency mode's delay, twice: on moto alone (no quotas, the bot's pacing off: what the bot's own CPU allows) and
  with AWS's published quotas on (tests/world/aws_quotas.py on the wall clock, the bot pacing itself to
  ``max_quota_share``). Printed beside the second: the lower bound the quotas impose on the bot's share (for each
  quota, its requests beyond its share of the burst at its share of the rate), the peak share of each quota the
  sweep took, and the throttled requests (none expected).
* :func:`whole_process`: ``safetycatch scan`` as a user runs it (a fresh process, start to exit, imports
  included) beside Cloud Custodian's CLI the same way, on the same moto account and delay.

Example:
    quota_table(0.025, 5000, 200, 100)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import latency

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"


def seed_apis(rest: int, http: int, functions: int) -> None:
    """Add REST and HTTP APIs until the account has ``rest`` and ``http`` of them (each to one bench function)."""
    from safetycatch.local.sandbox import SandboxAccount

    account = SandboxAccount()
    have_rest = len(account.client("apigateway").get_rest_apis(limit=500).get("items", []))
    have_http = len(account.client("apigatewayv2").get_apis(MaxResults="500").get("Items", []))
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn-{{:05d}}"
    for i in range(have_rest, rest):
        account.rest_api(arn.format((i * 37) % functions), path=f"q{i}", grant=False)
    for i in range(have_http, http):
        account.http_api(arn.format((i * 53) % functions), route=f"GET /q{i}", grant=False)


def _sweep(n: int) -> tuple[float, Any]:
    from chalicelib.bot.runtime import Runtime

    runtime = Runtime.from_env(str(ROOT / "policies"), mode="enforce", region="us-east-1")
    runtime.account = ACCOUNT
    started = time.perf_counter()
    report = runtime.engine(ACCOUNT, "us-east-1").sweep(act=False)
    assert report.functions_scanned == n, report.functions_scanned
    return time.perf_counter() - started, report


def quota_table(delay: float, functions: int, rest: int, http: int) -> dict[str, Any]:
    """The sweep without and with AWS's quotas (see the module's text); returns the figures."""
    from chalicelib.core import quotas
    from tests.world.aws_quotas import QuotaLayer

    started = time.perf_counter()
    seed_apis(rest, http, functions)
    print(f"\nquota mode: {functions:,} functions, {rest} REST and {http} HTTP APIs (seeded in "
          f"{time.perf_counter() - started:.0f} s), {delay * 1000:.0f} ms per request")
    latency.install(delay)
    quotas.configure(enabled=False)
    plain, plain_report = _sweep(functions)
    print(f"  without quotas (moto alone, pacing off): {plain:6.2f} s, {len(plain_report.decisions)} findings, "
          f"{len(plain_report.errors)} errors")
    pacer = quotas.configure(share=quotas.DEFAULT_SHARE, clock=quotas.RealClock(), enabled=True)
    layer = QuotaLayer(clock=pacer.clock)
    with layer.installed():
        paced, report = _sweep(functions)
    bound, limiting = lower_bound(layer, pacer.share)
    print(f"  with AWS's quotas (max_quota_share {pacer.share:g}): {paced:6.2f} s, {len(report.decisions)} findings, "
          f"{len(report.errors)} errors, {sum(layer.throttled.values())} throttled; the quotas' lower bound "
          f"{bound:.1f} s ({limiting})")
    same = {d.id for d in report.decisions} == {d.id for d in plain_report.decisions}
    print(f"  same findings with and without quotas: {'yes' if same else 'NO'}")
    peaks = layer.peak_share()
    print("  peak share of each quota the sweep used: " + ", ".join(
        f"{name} {share:.2f}" for name, share in sorted(peaks.items(), key=lambda item: -item[1])))
    quotas.configure(enabled=False)
    return {"plain": plain, "paced": paced, "bound": bound, "peaks": peaks, "same": same,
            "errors": len(report.errors), "throttled": sum(layer.throttled.values())}


def lower_bound(layer: Any, share: float) -> tuple[float, str]:
    """The least time the bot's requests need at its share of each quota: (requests beyond its share of the
    burst) / (its share of the rate); the largest, and that quota's requests per quota window."""
    best, limiting = 0.0, "no quota limits"
    counts: dict[str, int] = {}
    for (_, _, name), times in layer.accepted.items():
        counts[name] = counts.get(name, 0) + len(times)
    for name, count in counts.items():
        quota = layer.quotas[name]
        seconds = max(0.0, count - share * quota.burst) / (share * quota.rate)
        if seconds > best:
            best, limiting = seconds, f"{name}: {count} requests at {share * quota.rate:g}/s, {quota.window}"
    return best, limiting


SCAN = ("import sys; sys.path.insert(0, {root!r}); from bench import latency; latency.install({delay}); "
        "from safetycatch.main import run; run()")


def scan_lower_bound(share: float | None = None) -> tuple[float, str]:
    """The least time one ``safetycatch scan`` of the bench account needs on AWS at ``share`` of the quotas it
    paces to: GetResources, one request per REST API (a page of 500 resources), is the binding one (5 requests
    every 2 s per account, chalicelib/core/quotas.py); the rest of a 1,000-function scan fits in the other quotas'
    bursts. Returns seconds and the arithmetic."""
    from chalicelib.core import quotas
    from safetycatch.local.sandbox import SandboxAccount

    share = quotas.DEFAULT_SHARE if share is None else share
    rest = len(SandboxAccount().client("apigateway").get_rest_apis(limit=500).get("items", []))
    quota = next(q for q in quotas.QUOTAS if q.name == "apigateway:GetResources")
    seconds = max(0.0, rest - share * quota.burst) / (share * quota.rate)
    return seconds, (f"{rest} GetResources (one per REST API) at {share:g} x {quota.rate:g}/s after {share:g} x "
                     f"{quota.burst:g} at once")


def _scan_process(endpoint: str, delay: float) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}  # the CLI paces itself as on AWS (moto has no quotas)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCAN.format(root=str(ROOT), delay=delay), "scan", "--format",
                           "json", "--region", "us-east-1", "--no-state"], env=env, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started, done


def whole_process(endpoint: str, delay: float, n: int, python: Path | None) -> None:
    """``safetycatch scan`` (twice: a first and a repeated run) and ``custodian run`` as a user runs them: a fresh
    process each, start to exit; beside each, the quotas' lower bound of the scan."""
    from bench import compare

    first, done = _scan_process(endpoint, delay)
    if done.returncode not in (0, 1):
        print(f"  whole process: safetycatch scan failed: {done.stderr.decode()[-300:]}")
        return
    second, _ = _scan_process(endpoint, delay)
    bound, arithmetic = scan_lower_bound()
    line = (f"  whole process, {n:,} functions at {delay * 1000:.0f} ms: safetycatch scan {first:.2f} s (repeated: "
            f"{second:.2f} s; no route cache, see /work/notes/issue-27.md); quotas' lower bound {bound:.1f} s "
            f"({arithmetic})")
    if python:
        started = time.perf_counter()
        compare.custodian_scan(python, endpoint, delay)
        theirs = time.perf_counter() - started
        line += (f"; custodian run {theirs:.2f} s: {theirs / first:.1f}x (goal >= 10x: "
                 f"{compare.verdict(theirs >= 10 * first)}; at the lower bound at best "
                 f"{theirs / max(bound, 1e-9):.1f}x)")
    print(line)
