"""Published AWS Lambda list prices, in one place, for the labelled cost estimates in findings.

Source: https://aws.amazon.com/lambda/pricing/ - US East (N. Virginia), first on-demand duration tier
(the first 6 billion GB-seconds a month), as published through 2024-2025. Other regions, volume tiers,
Savings Plans and the free tier change the real bill: every figure built from these is an *estimate* and the
messages say so. A month is 730 hours, as the AWS Pricing Calculator counts it.

Example:
    >>> round(provisioned_monthly(slots=2, memory_mb=1024), 2)
    21.9
    >>> round(per_million(duration_ms=1000, memory_mb=1024), 2)
    16.87
"""

from __future__ import annotations

from collections.abc import Sequence

PRICE_LIST = "AWS list prices, us-east-1"  # the label every estimate carries
HOURS_PER_MONTH = 730
MB_PER_GB = 1024
VCPU_MEMORY_MB = 1769  # Lambda gives one full vCPU at 1,769 MB; CPU share grows linearly up to it

# USD per GB-second, by architecture.
DURATION_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PROVISIONED_GB_S = {"x86_64": 0.0000041667, "arm64": 0.0000033334}  # charged whether used or not
REQUEST_USD = 0.20 / 1_000_000  # per request, both architectures
# SnapStart for Python and .NET (Java's SnapStart has no extra charge): the snapshot cache, per GB-second of
# memory for as long as a published version with SnapStart is active (3 hours at least), and each restore
# of an execution environment from it, per GB of memory restored.
SNAPSTART_CACHE_GB_S = 0.0000015046
SNAPSTART_RESTORE_GB = 0.0001397998


def _arch(architectures: Sequence[str]) -> str:
    return "arm64" if "arm64" in architectures else "x86_64"


def provisioned_monthly(slots: int, memory_mb: int, architectures: Sequence[str] = ("x86_64",)) -> float:
    """USD a month for ``slots`` provisioned-concurrency environments kept warm (the standing charge only).

    Example:
        >>> round(provisioned_monthly(100, 1024), 2)  # the seed's "100 to be safe": about $1,095
        1095.01
    """
    gb = memory_mb / MB_PER_GB
    return slots * gb * HOURS_PER_MONTH * 3600 * PROVISIONED_GB_S[_arch(architectures)]


def per_million(duration_ms: float, memory_mb: int, architectures: Sequence[str] = ("x86_64",)) -> float:
    """USD per million on-demand invocations of ``duration_ms`` at ``memory_mb`` (duration + requests).

    Example:
        >>> round(per_million(3000, 128), 2)
        6.45
    """
    gb_seconds = duration_ms / 1000 * memory_mb / MB_PER_GB
    return 1_000_000 * (gb_seconds * DURATION_GB_S[_arch(architectures)] + REQUEST_USD)


def cpu_bound_duration(duration_ms: float, memory_mb: int, target_mb: int) -> float:
    """Expected duration at ``target_mb`` if the work is CPU-bound and single-threaded: CPU share scales
    with memory up to one vCPU (1,769 MB) and no further.

    Example:
        >>> cpu_bound_duration(3000, 128, 1024)
        375.0
    """
    speedup = min(target_mb, VCPU_MEMORY_MB) / min(memory_mb, VCPU_MEMORY_MB)
    return duration_ms / max(speedup, 1.0)


def snapstart_monthly(memory_mb: int, runtime: str, versions: int = 1) -> tuple[float, float]:
    """USD a month of SnapStart snapshot cache for ``versions`` published versions, and USD per 1,000 restores;
    both 0 for Java, whose SnapStart has no extra charge.

    Example:
        >>> [round(x, 2) for x in snapstart_monthly(1024, "python3.12")]
        [3.95, 0.14]
    """
    if runtime.startswith("java"):
        return 0.0, 0.0
    gb = memory_mb / MB_PER_GB
    return versions * gb * HOURS_PER_MONTH * 3600 * SNAPSTART_CACHE_GB_S, 1000 * gb * SNAPSTART_RESTORE_GB


def usd(amount: float) -> str:
    """Money for a message: ``$1,095`` for large sums, ``$6.45`` for small ones, ``$0.0042`` below a cent."""
    if amount >= 100:
        return f"${amount:,.0f}"
    if amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.4f}"
