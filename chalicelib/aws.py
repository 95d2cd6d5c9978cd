"""boto3 clients with botocore's standard retry mode, created once per service and reused, and the one rule
for AWS errors that survive those retries (:func:`is_transient`).

``AWS_ENDPOINT_URL`` (honoured by botocore itself) points every client at moto in tests and the demo.

Example:
    >>> clients = Clients("us-east-1")
    >>> clients("lambda") is clients("lambda")
    True
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries import standard as botocore_retries

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    user_agent_appid="safetycatch",
)

# boto3 sessions are not thread-safe when creating clients; clients themselves are (parallel scans).
CLIENT_LOCK = threading.RLock()

NOT_FOUND = {"ResourceNotFoundException", "NotFoundException", "NoSuchEntity", "ResourceNotFound"}


class Clients:
    """A cache of boto3 clients for one region (and one session, e.g. an assumed role)."""

    def __init__(self, region: str | None = None, session: boto3.session.Session | None = None,
                 account: str | None = None) -> None:
        self.session = session or boto3.session.Session()
        self.region = region or self.session.region_name or "us-east-1"
        self._clients: dict[str, Any] = {"_account": account} if account else {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            with CLIENT_LOCK:  # boto3 sessions must not create clients from two threads at once
                if service not in self._clients:
                    self._clients[service] = self.session.client(service, region_name=self.region,
                                                                 config=RETRY_CONFIG)
        return self._clients[service]

    def account_id(self) -> str:
        """The account of the current credentials (one STS call, cached)."""
        if "_account" not in self._clients:
            self._clients["_account"] = self("sts").get_caller_identity()["Account"]
        return str(self._clients["_account"])


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


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
#   event (MaximumRetryAttempts in cli/dead_letters.py), idempotency and the re-read make that safe, and after
#   the last attempt the on-failure destination keeps the event for ``safetycatch redrive``;
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
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        context = botocore_retries.RetryContext(attempt_number=1, parsed_response=exc.response,
                                                http_response=_Status(status) if status else None)
        return bool(_TRANSIENT_CHECKS.is_retryable(context)) or status == 429 or status >= 500
    if isinstance(exc, BotoCoreError):  # no response at all: a connection or read timeout, an endpoint unreachable
        context = botocore_retries.RetryContext(attempt_number=1, caught_exception=exc)
        return bool(_TRANSIENT_CHECKS.is_retryable(context))
    return False
