"""AWS's published control-plane quotas the bot shares with the customer, and the pacer that keeps the bot within
its share of each (``max_quota_share`` in policies/settings.yaml, default 0.5: the customer's deploys keep the
rest).

The quotas are per account and per region (API Gateway's, Lambda's, CloudWatch's and CloudWatch Logs' pages say
so); most cannot be raised. One request can count against more than one quota: an API Gateway GetResources
counts against its own 5-every-2-seconds quota and against the 10/s of every API Gateway control-plane call, v1
(``apigateway``) and v2 (``apigatewayv2``) together.

The pacer is a reservation token bucket (GCRA) per account, region and quota, at ``share`` x the quota's rate
with ``share`` x its burst: each request reserves the next free slot of every quota it counts against and waits
until the latest of them. It runs on botocore's ``request-created`` event, once per attempt (a retry spends
quota too), before the request is signed and sent. The clock is injectable (:func:`configure`) so that tests
pace on a virtual clock, with no wall-clock sleep.

The table is also the test world's: tests/world/aws_quotas.py enforces the same numbers on top of moto and answers
with each service's own throttling error.

Example:
    >>> [q.name for q in quotas_for("apigateway", "GetResources")]
    ['apigateway:GetResources', 'apigateway:control-plane']
    >>> [q.name for q in quotas_for("lambda", "ListFunctions")]
    ['lambda:control-plane']
    >>> pacer = Pacer(0.5, ManualClock())
    >>> [pacer.reserve("123456789012/us-east-1", "apigateway", "GetResources") for _ in range(4)]
    [0.0, 0.0, 0.4, 1.2]
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_SHARE = 0.5
ROUND_TRIP_S = 0.1  # a typical control-plane round trip: in-flight caps are rate x round trip (Little's law)

APIGW = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
LAMBDA = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
CLOUDWATCH = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html"
LOGS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html"
IAM = "https://repost.aws/knowledge-center/iam-sts-throttling-error"
INVOKE = frozenset({"Invoke", "InvokeAsync", "InvokeWithResponseStream"})


@dataclass(frozen=True)
class Quota:
    """One request-rate quota: ``rate`` requests a second with a bucket of ``burst``, per account and region,
    for ``operations`` of ``services`` (none named: every operation of those services but ``exclude``)."""

    name: str
    services: tuple[str, ...]
    rate: float
    burst: float
    source: str
    operations: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    note: str = ""

    def covers(self, service: str, operation: str) -> bool:
        """Whether a request to ``service``'s ``operation`` counts against this quota."""
        if service not in self.services:
            return False
        return operation in self.operations if self.operations else operation not in self.exclude

    @property
    def window(self) -> str:
        """The quota as AWS states it (``5 every 2 s``, ``15/s``)."""
        if self.rate < 5 and self.burst > self.rate:
            return f"{self.burst:g} every {self.burst / self.rate:g} s"
        return f"{self.rate:g}/s" + (f" (burst {self.burst:g})" if self.burst != self.rate else "")


def _cloudwatch(operation: str, rate: float, note: str = "") -> Quota:
    return Quota(f"cloudwatch:{operation}", ("cloudwatch",), rate, rate, CLOUDWATCH, frozenset({operation}), note=note)


def _logs(operation: str, rate: float) -> Quota:
    return Quota(f"logs:{operation}", ("logs",), rate, rate, LOGS, frozenset({operation}))


# Where a page states no burst, the bucket holds one second's worth.
QUOTAS: tuple[Quota, ...] = (
    Quota("apigateway:GetResources", ("apigateway",), 2.5, 5, APIGW, frozenset({"GetResources"}),
          note="5 requests every 2 seconds per account; cannot be increased"),
    Quota("apigateway:control-plane", ("apigateway", "apigatewayv2"), 10, 40, APIGW,
          note="every control-plane call (REST, HTTP and WebSocket APIs together): the page's 'Total operations' "
               "row, '10 requests per second with a burst quota of 40 requests per second', not adjustable "
               "(confirmed against the page's table, issue 27)"),
    Quota("lambda:GetFunction", ("lambda",), 100, 100, LAMBDA, frozenset({"GetFunction"}),
          note="cannot be increased"),
    Quota("lambda:GetPolicy", ("lambda",), 15, 15, LAMBDA, frozenset({"GetPolicy"}), note="cannot be increased"),
    Quota("lambda:control-plane", ("lambda",), 15, 15, LAMBDA,
          exclude=frozenset({"GetFunction", "GetPolicy"}) | INVOKE,
          note="the remainder of the control plane (ListFunctions, GetFunctionConcurrency, ListEventSourceMappings,"
               " GetFunctionRecursionConfig, ListProvisionedConcurrencyConfigs, PutFunctionConcurrency, ...)"),
    _cloudwatch("GetMetricData", 500, "without Metrics Insights queries (the issue's reading of the current page; "
                                      "the archived page said 50; still unconfirmed: issue 27's search of the "
                                      "page's text did not reach its API-rate rows)"),
    _cloudwatch("DescribeAlarms", 9),
    _cloudwatch("DescribeAlarmsForMetric", 9),
    _cloudwatch("ListMetrics", 25),
    _cloudwatch("GetMetricStatistics", 400),
    _cloudwatch("PutMetricAlarm", 3),
    *(_cloudwatch(operation, 3, "3 TPS for each of these operations; cannot be changed") for operation in (
        "DeleteAlarms", "SetAlarmState", "DescribeAlarmHistory", "DisableAlarmActions", "EnableAlarmActions")),
    _logs("DescribeLogGroups", 5),
    _logs("FilterLogEvents", 5),
    _logs("GetLogEvents", 10),
    Quota("iam:all", ("iam",), 20, 20, IAM,
          note="IAM publishes no default rate (checked, issue 27: the IAM and STS quotas page, "
               "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, lists object sizes and "
               "counts only; the page cited says the rate limits cannot be raised and gives the error: Throttling, "
               "400); 20/s is the figure the bot has always assumed"),
)

# Concurrent Logs Insights queries per account and region, dashboards' queries included: the current Logs pages
# say 100 (botocore's StartQuery text said 30, older pages 20 and 10). Not a rate: see tests/world/aws_quotas.py.
INSIGHTS_CONCURRENT_QUERIES = 100
INSIGHTS_SOURCE = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_ExportQueryResults.html"


@functools.lru_cache(maxsize=512)
def quotas_for(service: str, operation: str) -> tuple[Quota, ...]:
    """Every quota a request to ``service``'s ``operation`` counts against (none: the bot does not pace it)."""
    return tuple(q for q in QUOTAS if q.covers(service, operation))


def in_flight(service: str, share: float = DEFAULT_SHARE, ceiling: int = 8) -> int | None:
    """Requests one scope keeps in flight to ``service``: the bot's share of its fastest quota x a typical round
    trip (Little's law), at least 1 and at most ``ceiling``; None when the table has no quota for it.

    Example:
        >>> in_flight("lambda"), in_flight("apigateway"), in_flight("logs"), in_flight("s3")
        (5, 1, 1, None)
    """
    rates = [q.rate for q in QUOTAS if service in q.services]
    if not rates:
        return None
    return max(1, min(ceiling, math.ceil(max(rates) * share * ROUND_TRIP_S)))


class Clock(Protocol):
    """What the pacer needs of time."""

    def monotonic(self) -> float: ...

    def sleep_until(self, instant: float) -> None: ...


class RealClock:
    """The process's monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, instant: float) -> None:
        delay = instant - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class ManualClock:
    """A clock that moves only when told to (``sleep_until`` jumps there): deterministic pacing in tests.

    Example:
        >>> clock = ManualClock()
        >>> clock.sleep_until(2.5); clock.monotonic()
        2.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep_until(self, instant: float) -> None:
        with self._lock:
            self._now = max(self._now, instant)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class Pacer:
    """The bot's share of every quota, per scope (``account/region``): reservation token buckets (GCRA)."""

    def __init__(self, share: float = DEFAULT_SHARE, clock: Clock | None = None) -> None:
        self.share = share
        self.clock: Clock = clock or RealClock()
        self._next: dict[tuple[str, str], float] = {}  # (scope, quota) -> theoretical arrival time
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds the bot waited for its share, all scopes (bench figure)
        self.enabled = True  # off only where there are no quotas to keep (the bench's moto-only figures)

    def reserve(self, scope: str, service: str, operation: str, now: float | None = None) -> float:
        """Reserve a slot in every quota the request counts against; returns how long after ``now`` (the
        clock's, by default) the request may be sent."""
        quotas = quotas_for(service, operation) if self.enabled else ()
        if not quotas:
            return 0.0
        now = self.clock.monotonic() if now is None else now
        with self._lock:
            send = now  # the request goes when every quota it counts against has room (GCRA: TAT - tolerance)
            for quota in quotas:
                interval, tolerance = self._spacing(quota)
                send = max(send, self._next.get((scope, quota.name), now) - tolerance)
            for quota in quotas:  # each quota's next arrival time counts from when the request really goes
                interval, _ = self._spacing(quota)
                self._next[(scope, quota.name)] = max(self._next.get((scope, quota.name), send), send) + interval
            wait = send - now
            self.waited += wait
        return round(wait, 9)

    def _spacing(self, quota: Quota) -> tuple[float, float]:
        """The interval between requests at the bot's share of the rate, and the burst tolerance (GCRA)."""
        interval = 1.0 / (quota.rate * self.share)
        return interval, (max(1.0, quota.burst * self.share) - 1.0) * interval

    def pace(self, scope: str, service: str, operation: str) -> None:
        """Wait for the request's slot (on the pacer's clock)."""
        now = self.clock.monotonic()
        wait = self.reserve(scope, service, operation, now)
        if wait > 0:
            self.clock.sleep_until(now + wait)



_pacer = [Pacer()]


def pacer() -> Pacer:
    """The process-wide pacer (every client of every scope paces through it)."""
    return _pacer[0]


def hook(scope: str, service: str) -> Any:
    """A botocore ``request-created`` handler pacing one client's requests in ``scope`` (``account/region``)
    through the process-wide pacer as it is when the request is made.

    Example:
        client.meta.events.register_first("request-created", hook("123456789012/us-east-1", "lambda"))
    """
    def on_request_created(operation_name: str = "", **_: Any) -> None:
        pacer().pace(scope, service, operation_name)

    return on_request_created


def configure(share: float | None = None, clock: Clock | None = None, enabled: bool | None = None) -> Pacer:
    """Set the bot's share of each quota (``max_quota_share``) and, in tests, the clock; a new clock starts a
    fresh pacer (nothing reserved). ``enabled=False`` stops pacing (the bench's figures on moto alone, which has
    no quotas). Returns the pacer.

    Example:
        >>> configure(share=0.5).share
        0.5
    """
    current = _pacer[0]
    if clock is not None and clock is not current.clock:
        _pacer[0] = Pacer(current.share if share is None else share, clock)
    elif share is not None:
        current.share = share
    if enabled is not None:
        _pacer[0].enabled = enabled
    return _pacer[0]
