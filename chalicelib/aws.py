"""boto3 clients with botocore's standard retry mode, created once per service and reused.

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
from botocore.exceptions import ClientError

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
