"""AWS Health, read back: what the Health API itself says about one notice (``DescribeEventDetails`` and
``DescribeAffectedEntities`` for its ``eventArn``), in the notice's own account.

A notice that arrives on the bus (or in a dead-letter queue, or as a direct invoke) is a claim; only the Health
API's answer is AWS's word. The Health API has two regional endpoints, active-passive, whatever region the notice
is about: ``health.us-east-1.amazonaws.com`` (``HEALTH_REGION``), failing over to ``health.us-east-2``
(``HEALTH_FAILOVER_REGION``; :func:`read_notice_anywhere` tries it when us-east-1 cannot be reached); it needs
a Business, Enterprise On-Ramp or Enterprise Support plan (``SubscriptionRequiredException`` otherwise). Where it
cannot be read (no such plan, access denied, an endpoint without the API), :class:`HealthUnavailable` says so
and nothing may be killed on Health evidence alone. A transient failure is raised as is (the event is retried).

Example:
    notice = read_notice(runtime.clients(HEALTH_REGION, "123456789012"), event_arn)
    notice.status, notice.entities
    # -> ('open', ('arn:aws:lambda:us-east-1:123456789012:function:thumbnailer',))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError
from botocore.exceptions import ConnectionError as EndpointUnreachable

from chalicelib.core.aws import Clients, describe_error, error_code, is_transient, is_unsupported
from chalicelib.core.log import logger

HEALTH_REGION = "us-east-1"
HEALTH_FAILOVER_REGION = "us-east-2"  # the passive endpoint, active when us-east-1 is not (AWS Health User Guide)
MAX_ENTITY_PAGES = 5  # a loop notice names a few functions; more pages than this is not a notice to act on


class HealthUnavailable(Exception):
    """The Health API cannot be read here (no support plan, denied, missing): one line, shown as is."""


@dataclass(frozen=True)
class HealthNotice:
    """A Health event as the Health API describes it (``found`` False: the API does not know the ARN)."""

    arn: str
    found: bool
    service: str = ""
    code: str = ""
    region: str = ""
    status: str = ""
    start: datetime | None = None
    updated: datetime | None = None
    entities: tuple[tuple[str, str], ...] = ()  # (entityValue, awsAccountId) pairs
    problem: str = ""


def read_notice(clients: Clients, event_arn: str) -> HealthNotice:
    """The Health API's own description of ``event_arn`` and its affected entities (``clients``: the notice's
    account, region ``HEALTH_REGION``). Raises ``HealthUnavailable`` where the API cannot be read."""
    client = clients("health")
    try:
        details = client.describe_event_details(eventArns=[event_arn])
        failed = details.get("failedSet") or []
        found = [item for item in details.get("successfulSet") or []
                 if (item.get("event") or {}).get("arn") == event_arn]
        if not found:
            why = "; ".join(f"{f.get('errorName', 'error')}: {str(f.get('errorMessage', ''))[:120]}" for f in failed)
            return HealthNotice(event_arn, False, problem=why or "no such event")
        entities = _entities(client, event_arn)
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            raise
        raise HealthUnavailable(_why_unavailable(exc)) from exc
    event = found[0]["event"]
    return HealthNotice(event_arn, True, str(event.get("service") or ""), str(event.get("eventTypeCode") or ""),
                        str(event.get("region") or ""), str(event.get("statusCode") or ""),
                        _aware(event.get("startTime")), _aware(event.get("lastUpdatedTime")), entities)


def read_notice_anywhere(clients_in: Callable[[str], Clients], event_arn: str) -> HealthNotice:
    """:func:`read_notice` at the active Health endpoint: us-east-1, or us-east-2 when us-east-1 cannot be reached
    (an endpoint or connection error; any answer from us-east-1, a refusal included, is its answer).
    ``clients_in(region)``: the notice's account's clients in that region. Neither reachable: the connection
    error is raised (transient: the event is retried; nothing is killed on a notice neither endpoint confirmed).

    Example:
        notice = read_notice_anywhere(lambda region: runtime.clients(region, "123456789012"), event_arn)
    """
    try:
        return read_notice(clients_in(HEALTH_REGION), event_arn)
    except (EndpointUnreachable, ConnectionClosedError) as exc:
        logger.warning("health endpoint unreachable; trying its failover",
                       extra={"region": HEALTH_REGION, "failover": HEALTH_FAILOVER_REGION, "error": str(exc)[:200]})
    return read_notice(clients_in(HEALTH_FAILOVER_REGION), event_arn)


def _entities(client: Any, event_arn: str) -> tuple[tuple[str, str], ...]:
    pages = client.get_paginator("describe_affected_entities").paginate(
        filter={"eventArns": [event_arn]}, PaginationConfig={"MaxItems": 100 * MAX_ENTITY_PAGES})
    return tuple((str(e.get("entityValue") or ""), str(e.get("awsAccountId") or ""))
                 for page in pages for e in page.get("entities") or [] if e.get("eventArn", event_arn) == event_arn)


def _why_unavailable(exc: BaseException) -> str:
    code = error_code(exc)
    if code == "SubscriptionRequiredException":
        return "the AWS Health API cannot be read (SubscriptionRequiredException: it needs a Business, Enterprise " \
               "On-Ramp or Enterprise Support plan)"
    if is_unsupported(exc):
        return "the AWS Health API is not available here"
    return f"the AWS Health API cannot be read ({describe_error(exc)})"


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
