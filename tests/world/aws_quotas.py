"""AWS's control-plane quotas on top of moto, which never throttles: a test-world component for tests and the bench.

:class:`QuotaLayer` enforces, per account and region, every request-rate quota of the bot's quota table
(chalicelib/core/quotas.py: each number with its source page) with token buckets on an injectable clock, and answers
a request over its quota with the error that service really returns, in the service's own wire protocol, so that
botocore parses it, retries it (standard / adaptive mode) and slows down exactly as against AWS:

=============== ================================ ====== ==================================================
service         error code                       status shape
=============== ================================ ====== ==================================================
apigateway(v2)  TooManyRequestsException         429    rest-json ``{"message": "Too Many Requests"}``,
                                                        ``Retry-After``
lambda          TooManyRequestsException         429    rest-json ``Type``, ``message``, ``Reason``
                                                        ``CallerRateLimitExceeded``, ``Retry-After``
cloudwatch      Throttling                       400    smithy-rpc-v2-cbor ``__type`` (query-compatible:
                                                        ``x-amzn-query-error: Throttling;Sender``)
logs            ThrottlingException              400    json ``__type``, ``message``
logs StartQuery LimitExceededException           400    json: the account's concurrent Insights queries
iam             Throttling                       400    query XML ``ErrorResponse``
=============== ================================ ====== ==================================================

It also keeps Logs Insights queries running for ``query_runtime_s`` (moto finishes them at once): GetQueryResults
says ``Running`` until then, each running query holds one of the account's ``insights_limit`` concurrent
queries, and StopQuery (which moto lacks) cancels one as AWS documents (``{"success": true}``; an error for a
query that is not running).

What moto cannot show and this layer does not claim: AWS's own bucket refill granularity and how its burst is
shared between API Gateway's per-operation and account quotas (unpublished); the token buckets here follow the
published rate and burst only. The account is the request's access key (moto maps keys to accounts; an assumed
role's session has its own key).

Example:
    layer = QuotaLayer(clock=ManualClock())
    with layer.installed():                 # every botocore session created meanwhile goes through it
        ...                                 # a sweep; then layer.throttled, layer.peak_share()
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse

from chalicelib.core.quotas import INSIGHTS_CONCURRENT_QUERIES, QUOTAS, Clock, ManualClock, Quota, RealClock, quotas_for

ANSWERED = "https://aws-quotas.invalid/answered-by-the-quota-layer"
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[a-z0-9-]+)/")
# Each service's answer when a request is over its rate quota: (code, HTTP status, body members).
THROTTLES: dict[str, tuple[str, int, dict[str, str]]] = {
    "apigateway": ("TooManyRequestsException", 429, {"message": "Too Many Requests"}),
    "apigatewayv2": ("TooManyRequestsException", 429, {"message": "Too Many Requests"}),
    "lambda": ("TooManyRequestsException", 429, {"Type": "User", "message": "Rate exceeded",
                                                 "Reason": "CallerRateLimitExceeded"}),
    "cloudwatch": ("Throttling", 400, {"message": "Rate exceeded"}),
    "logs": ("ThrottlingException", 400, {"message": "Rate exceeded"}),
    "iam": ("Throttling", 400, {"message": "Rate exceeded"}),
}


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second on ``clock``; a request takes one."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.last = burst, clock.monotonic()

    def refill(self) -> None:
        now = self.clock.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now


class QuotaLayer:
    """AWS's published quotas on top of moto (see the module's text); ``clock`` is shared with the bot's pacer
    in tests (chalicelib.core.quotas.configure) so that nothing waits on the wall clock."""

    def __init__(self, clock: Clock | None = None, quotas: tuple[Quota, ...] = QUOTAS,
                 insights_limit: int = INSIGHTS_CONCURRENT_QUERIES, query_runtime_s: float = 0.0) -> None:
        self.clock: Clock = clock or RealClock()
        self.quotas = {q.name: q for q in quotas}
        self.insights_limit, self.query_runtime_s = insights_limit, query_runtime_s
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self.accepted: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (key, region, quota) -> times
        self.throttled: dict[str, int] = defaultdict(int)  # quota name -> requests answered with its error
        self.queries: dict[str, tuple[str, float]] = {}  # Insights query id -> (scope, started at)
        self.stopped: set[str] = set()

    # -- the customer's share ----------------------------------------------------------------------------------
    def spend(self, key: str, region: str, quota: str, tokens: float) -> None:
        """Others in the account (the customer's CI, the console) take ``tokens`` from a quota now."""
        with self._lock:
            bucket = self._bucket(key, region, self.quotas[quota])
            bucket.refill()
            bucket.tokens -= tokens

    def _bucket(self, key: str, region: str, quota: Quota) -> TokenBucket:
        name = (key, region, quota.name)
        if name not in self._buckets:
            self._buckets[name] = TokenBucket(quota.rate, quota.burst, self.clock)
        return self._buckets[name]

    # -- botocore hooks ----------------------------------------------------------------------------------------
    def watch(self, session: Any) -> None:
        """Send ``session``'s requests (botocore or boto3 session, and clients created from it later) through
        the layer: ahead of moto's own ``before-send`` handler."""
        events = getattr(session, "_session", session).get_component("event_emitter")
        events.register_first("before-parameter-build", self._tag)
        events.register_first("before-send", self._before_send)
        events.register_first("after-call", self._after_call)

    @contextlib.contextmanager
    def installed(self) -> Iterator[QuotaLayer]:
        """Every botocore session created inside the block goes through the layer."""
        original = botocore.session.Session.__init__
        layer = self

        def init(session: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            layer.watch(session)

        botocore.session.Session.__init__ = init
        try:
            yield self
        finally:
            botocore.session.Session.__init__ = original

    @staticmethod
    def _tag(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Remember the operation (and the query asked about) in the request's context for the later hooks."""
        context["aws_quotas"] = (model.service_model.service_name, model.name, model.service_model.resolved_protocol)
        if model.name == "GetQueryResults":
            context["aws_quotas_query"] = params.get("queryId", "")

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        tagged = (request.context or {}).get("aws_quotas")
        authorization = request.headers.get("Authorization", "")
        if isinstance(authorization, bytes):
            authorization = authorization.decode("utf-8", "replace")
        found = _CREDENTIAL.search(str(authorization))
        if not tagged or not found:
            return None
        service, operation, protocol = tagged
        key, region = found["key"], found["region"]
        request.context["aws_quotas_scope"] = f"{key}/{region}"
        with self._lock:
            over = self._take(key, region, service, operation)
            if over is None and operation == "StartQuery" and service == "logs":
                over = self._insights_full(f"{key}/{region}")
            if over is None and operation == "StopQuery" and service == "logs":
                return _answered(request, self._stop_query(request, protocol))
        if over is None:
            return None
        code, status, members = over
        return _answered(request, _error_response(request.url, protocol, code, status, members))

    def _take(self, key: str, region: str, service: str, operation: str) -> tuple[str, int, dict[str, str]] | None:
        """One token from every quota the request counts against, or the throttling answer (nothing taken)."""
        quotas = [q for q in quotas_for(service, operation) if q.name in self.quotas]
        buckets = [self._bucket(key, region, q) for q in quotas]
        for bucket in buckets:
            bucket.refill()
        empty = next((q for q, b in zip(quotas, buckets, strict=True) if b.tokens < 1), None)
        if empty is not None:
            self.throttled[empty.name] += 1
            return THROTTLES.get(service, ("ThrottlingException", 400, {"message": "Rate exceeded"}))
        now = self.clock.monotonic()
        for quota, bucket in zip(quotas, buckets, strict=True):
            bucket.tokens -= 1
            self.accepted[(key, region, quota.name)].append(now)
        return None

    def _insights_full(self, scope: str) -> tuple[str, int, dict[str, str]] | None:
        running = sum(1 for s, _ in self.queries.values() if s == scope)
        if running < self.insights_limit:
            return None
        self.throttled["logs:concurrent-queries"] += 1
        return ("LimitExceededException", 400,
                {"message": f"Account maximum query concurrency limit of [{self.insights_limit}] reached."})

    def _stop_query(self, request: Any, protocol: str) -> AWSResponse:
        query_id = str(json.loads(request.body or b"{}").get("queryId", ""))
        if query_id not in self.queries:
            return _error_response(request.url, protocol, "InvalidParameterException", 400,
                                   {"message": f"Query {query_id} is not running"})
        del self.queries[query_id]
        self.stopped.add(query_id)
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"},
                           _Raw(json.dumps({"success": True}).encode()))

    def _after_call(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """Insights queries run ``query_runtime_s`` on the layer's clock (moto ends them at once)."""
        scope = context.get("aws_quotas_scope", "")
        if model.service_model.service_name != "logs" or not scope:
            return
        with self._lock:
            if model.name == "StartQuery" and parsed.get("queryId"):
                self.queries[parsed["queryId"]] = (scope, self.clock.monotonic())
            elif model.name == "GetQueryResults":
                self._query_state(context, parsed)

    def _query_state(self, context: dict[str, Any], parsed: dict[str, Any]) -> None:
        query_id = str(context.get("aws_quotas_query", ""))
        if query_id in self.stopped:
            parsed.update(status="Cancelled", results=[])
        elif query_id in self.queries:
            if self.clock.monotonic() - self.queries[query_id][1] < self.query_runtime_s:
                parsed.update(status="Running", results=[])
            else:
                del self.queries[query_id]

    # -- figures -----------------------------------------------------------------------------------------------
    def peak_share(self) -> dict[str, float]:
        """For each quota, the largest share of it the requests took: the least ``s`` such that they fit a
        token bucket of ``s`` x the quota's rate and burst (max over intervals of n / (burst + rate x length))."""
        peaks: dict[str, float] = {}
        for (_, _, name), times in self.accepted.items():
            quota = self.quotas[name]
            peaks[name] = max(peaks.get(name, 0.0), _peak(sorted(times), quota.rate, quota.burst))
        return peaks


def _peak(times: list[float], rate: float, burst: float, reach: int = 2000) -> float:
    best = 0.0
    for i, start in enumerate(times):
        for j in range(i, min(len(times), i + reach)):
            best = max(best, (j - i + 1) / (burst + rate * (times[j] - start)))
    return best


def _answered(request: Any, response: AWSResponse) -> AWSResponse:
    """The layer's own answer: botocore emits ``before-send`` to every handler and takes the first response, so
    the request is pointed where moto's in-process handler matches no service (a throttled write must not
    happen in moto) and, over HTTP, botocore sends nothing."""
    request.url = ANSWERED
    return response


class _Raw:
    """The raw stream botocore reads an ``AWSResponse`` body from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _error_response(url: str, protocol: str, code: str, status: int, members: dict[str, str]) -> AWSResponse:
    """The error as ``protocol`` puts it on the wire (what botocore's parser for that protocol reads)."""
    headers = {"x-amzn-RequestId": "00000000-0000-4000-8000-000000000000"}
    if code in ("TooManyRequestsException",):
        headers["Retry-After"] = "1"
    if protocol == "rest-json":
        headers.update({"x-amzn-ErrorType": code, "Content-Type": "application/json"})
        body = json.dumps(members).encode()
    elif protocol == "json":
        headers["Content-Type"] = "application/x-amz-json-1.1"
        body = json.dumps({"__type": code, **members}).encode()
    elif protocol == "smithy-rpc-v2-cbor":
        headers.update({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor",
                        "x-amzn-query-error": f"{code};Sender"})
        body = _cbor({"__type": code, **members})
    else:  # query
        headers["Content-Type"] = "text/xml"
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{members.get('message', '')}"
                f"</Message></Error><RequestId>{headers['x-amzn-RequestId']}</RequestId></ErrorResponse>").encode()
    return AWSResponse(url, status, headers, _Raw(body))


def _cbor(data: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (RFC 8949: major types 5 and 3), all an error body needs."""
    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        if length < 256:
            return bytes([major << 5 | 24, length])
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")

    out = head(5, len(data))
    for key, value in data.items():
        for text in (key.encode(), value.encode()):
            out += head(3, len(text)) + text
    return out


__all__ = ["THROTTLES", "ManualClock", "QuotaLayer", "TokenBucket"]
