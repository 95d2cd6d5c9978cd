"""boto3 clients with botocore's adaptive retry mode (standard retries plus a client-side rate limiter), created
once per service and reused; the bounded pool that reads in parallel; and the one rule for AWS errors that
survive those retries (:func:`is_transient`).

``AWS_ENDPOINT_URL`` (honoured by botocore itself) points every client at moto in tests and the demo.

Reads run in parallel (botocore clients are thread-safe) on one process-wide request pool; how many
requests one scope (account and region) keeps in flight per service is capped by ``IN_FLIGHT``, sized to the
bot's share of the service's published quota at a typical round trip (rate x latency, Little's law), and every
request waits for its slot in each quota it counts against (chalicelib/core/quotas.py: at most ``max_quota_share`` of
any quota the bot shares with the customer). Beyond that the adaptive retry mode's client-side token bucket slows
a client down as soon as AWS throttles it.

Example:
    >>> clients = Clients("us-east-1")
    >>> clients("lambda") is clients("lambda")
    True
    >>> clients.parallel("lambda", lambda n: n * n, [1, 2, 3])
    [1, 4, 9]
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries import standard as botocore_retries

from chalicelib.core import quotas

T = TypeVar("T")
R = TypeVar("R")

# Requests one scope keeps in flight per service: for the services in the quota table (chalicelib/core/quotas.py,
# each number with its source page), the bot's share of the service's fastest quota x a typical round trip
# (Little's law); the pacer there keeps every operation within its own quota. The rest (S3, SNS, EC2, the tagging
# API) document no control-plane rate the bot comes near.
IN_FLIGHT = {"s3": 8, "sns": 4, "ec2": 4, "resourcegroupstaggingapi": 4,
             **{service: quotas.in_flight(service) or 4
                for service in ("lambda", "apigateway", "apigatewayv2", "cloudwatch", "iam", "logs")}}
DEFAULT_IN_FLIGHT = 4
REQUEST_THREADS = int(os.environ.get("SAFETYCATCH_REQUEST_THREADS", "64"))

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=max(IN_FLIGHT.values()) * 2,  # one client serves every thread of its scope
    user_agent_appid="safetycatch",
)

# boto3 sessions are not thread-safe when creating clients; clients themselves are (parallel scans).
CLIENT_LOCK = threading.RLock()

NOT_FOUND = {"ResourceNotFoundException", "NotFoundException", "NoSuchEntity", "ResourceNotFound"}
# SQS's "no such queue", as botocore reports it over the JSON protocol (the query-compatible code) and the query one
NO_SUCH_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}

_pools: dict[str, ThreadPoolExecutor] = {}
_MARKUP = re.compile(r"<[!?/]?[A-Za-z][^<>]*>")


def named_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """A process-wide thread pool by name, created on first use (each kind of task has its own pool, so a task
    never waits for one queued behind it in the same pool)."""
    with CLIENT_LOCK:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        return _pools[name]


def request_pool() -> ThreadPoolExecutor:
    """The process-wide pool single AWS requests run on (never a task that waits for another task)."""
    return named_pool("aws-read", REQUEST_THREADS)


class Clients:
    """A cache of boto3 clients for one region (and one session, e.g. an assumed role): one scope."""

    def __init__(self, region: str | None = None, session: boto3.session.Session | None = None,
                 account: str | None = None) -> None:
        self.session = session or boto3.session.Session()
        self.region = region or self.session.region_name or "us-east-1"
        self._clients: dict[str, Any] = {"_account": account} if account else {}
        self._limits: dict[str, threading.BoundedSemaphore] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            with CLIENT_LOCK:  # boto3 sessions must not create clients from two threads at once
                if service not in self._clients:
                    client = self.session.client(service, region_name=self.region, config=RETRY_CONFIG)
                    scope = f"{self._clients.get('_account') or 'own'}/{self.region}"
                    client.meta.events.register_first("request-created", quotas.hook(scope, service))
                    self._clients[service] = client
        return self._clients[service]

    def account_id(self) -> str:
        """The account of the current credentials (one STS call, cached)."""
        if "_account" not in self._clients:
            self._clients["_account"] = self("sts").get_caller_identity()["Account"]
        return str(self._clients["_account"])

    def _limit(self, service: str) -> threading.BoundedSemaphore:
        with CLIENT_LOCK:
            if service not in self._limits:
                self._limits[service] = threading.BoundedSemaphore(IN_FLIGHT.get(service, DEFAULT_IN_FLIGHT))
            return self._limits[service]

    def parallel(self, service: str, read: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[read(item) for item in items]`` with up to ``IN_FLIGHT[service]`` of this scope's requests to
        ``service`` in flight at once; results in ``items`` order; the first exception is raised after all ran.

        The caller waits for a free slot before it submits, so a busy scope never fills the shared pool with
        blocked tasks and other scopes' reads keep flowing.
        """
        items = list(items)
        if len(items) <= 1:
            return [read(item) for item in items]
        limit, pool = self._limit(service), request_pool()
        futures: list[Future[R]] = []
        for item in items:
            limit.acquire()
            future = pool.submit(read, item)
            future.add_done_callback(lambda _: limit.release())
            futures.append(future)
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futures]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(exc: BaseException, operation: bool = False) -> str:
    """One line for an AWS (or any) error: ``Code: message`` of a ``ClientError`` (``Operation: Code: message``
    with ``operation``), else ``Type: message``.

    Example:
        >>> describe_error(ValueError("bad"))
        'ValueError: bad'
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        line = f"{plain(error.get('Code', 'error'))}: {plain(error.get('Message', ''))}"
        return f"{exc.operation_name}: {line}" if operation else line
    return f"{type(exc).__name__}: {plain(exc)}"


def plain(text: Any, limit: int = 200) -> str:
    """``text`` as one line of plain text: markup dropped (a proxy's HTML page or an XML body that botocore
    could not parse ends up in an error's message), whitespace collapsed, at most ``limit`` characters.

    Example:
        >>> plain("<html><body><h1>403 Forbidden</h1>\\n<p>Denied.</p></body></html>")
        '403 Forbidden Denied.'
    """
    return " ".join(_MARKUP.sub(" ", str(text)).split())[:limit]


def queue_depth(sqs: Any, queue_name: str) -> int | None:
    """Messages in a queue of the client's account and region, visible and in flight; None when there is no such
    queue (any other error is raised).

    Example:
        queue_depth(session.client("sqs"), "safetycatch-prod-forward-dead-letters")
        # -> 2
    """
    try:
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in NO_SUCH_QUEUE:
            return None
        raise
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]).get("Attributes", {})
    return sum(int(value) for value in attributes.values())


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) in NOT_FOUND


def is_unsupported(exc: BaseException) -> bool:
    """The API is missing where we run (moto's 'Not yet implemented', an old partition, a 404)."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return (status == 404 and not is_not_found(exc)) or "not yet implemented" in message.lower() \
        or error_code(exc) in {"UnknownOperationException", "InvalidAction", "NotImplemented"}


# -- transient or permanent: the one rule ----------------------------------------------------------------
#
# An error reaches our code only after botocore's standard mode has retried it (RETRY_CONFIG: 8 attempts with
# exponential back-off). Inside one event it is then either
#
# * TRANSIENT (throttling, a 5xx, a timeout or a dropped connection: botocore's own retryable conditions, which
#   are the error codes and statuses AWS documents as retryable): the handler RAISES. Lambda retries the whole
#   event (MaximumRetryAttempts in safetycatch/build/dead_letters.py), idempotency and the re-read make that safe, and
# after   the last attempt the on-failure destination keeps the event for ``safetycatch redrive``;
# * PERMANENT (any other AWS error: AccessDenied, a function that is gone, a validation error): retrying cannot
#   help, so the handler RECORDS it (the report's ``skipped`` / ``errors``, the log, the metrics) and returns.
#
# A sweep is not one event: it records both kinds and carries on (the next sweep reads again). A write that
# still fails after botocore's retries is a decision with outcome ``failed`` (stored and notified), never a raise:
# fixes already applied in the same event must not be re-decided without their notification.
_TRANSIENT_CHECKS = botocore_retries.OrRetryChecker([
    botocore_retries.TransientRetryableChecker(),  # RequestTimeout, 500/502/503/504, connection errors
    botocore_retries.ThrottledRetryableChecker(),  # Throttling, TooManyRequestsException, SlowDown, ...
])


# Errors Lambda sends as 502 that retrying cannot fix (the function's key, network or package configuration;
# botocore's lambda service model gives them httpStatusCode 502): permanent whatever the status says.
PERMANENT_CODES = frozenset({
    "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException",
    "EC2AccessDeniedException", "InvalidSecurityGroupIDException", "InvalidSubnetIDException",
    "InvalidRuntimeException", "InvalidZipFileException", "SubnetIPAddressLimitReachedException",
    "ENILimitReachedException"})


class _Status:
    """The one attribute of an HTTP response botocore's checkers read."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def is_transient(exc: BaseException) -> bool:
    """Whether an AWS failure is worth retrying later (see the rule above).

    Example:
        >>> def error(code, status):
        ...     response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        ...     return ClientError(response, "GetFunction")
        >>> is_transient(error("TooManyRequestsException", 429)), is_transient(error("ServiceException", 500))
        (True, True)
        >>> is_transient(error("AccessDeniedException", 403)), is_transient(error("ResourceNotFoundException", 404))
        (False, False)
    """
    if isinstance(exc, ClientError):
        if error_code(exc) in PERMANENT_CODES:
            return False
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        context = botocore_retries.RetryContext(attempt_number=1, parsed_response=exc.response,
                                                http_response=_Status(status) if status else None)
        return bool(_TRANSIENT_CHECKS.is_retryable(context)) or status == 429 or status >= 500
    if isinstance(exc, BotoCoreError):  # no response at all: a connection or read timeout, an endpoint unreachable
        context = botocore_retries.RetryContext(attempt_number=1, caught_exception=exc)
        return bool(_TRANSIENT_CHECKS.is_retryable(context))
    return False
