"""The AWS Health API for tests: moto has no Health API (its in-process backend answers 404 "Not yet implemented",
which the bot treats as "cannot be read"), so a botocore ``Stubber`` on the real ``health`` client of the notice's
account answers exactly the two calls the bot makes, ``DescribeEventDetails`` and ``DescribeAffectedEntities``,
with the shapes of the Health API reference (botocore's service model validates every stubbed response).

``stub_health(runtime, notice)`` answers as AWS Health would for a notice AWS really sent (open, started now,
the notice's own entities); keyword arguments describe what AWS Health really holds when the notice on the bus
says otherwise (``known=False``: AWS has no such event; ``error``: the API refuses, e.g. no support plan).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chalicelib.inventory.health import HEALTH_REGION


def health_client(runtime: Any, account: str, region: str = HEALTH_REGION) -> Any:
    """The health client the bot uses for ``account`` (the bot's own, or a member's through its role) at the Health
    endpoint of ``region`` (us-east-1, or its failover us-east-2)."""
    return runtime.clients(region, account)("health")


def unreachable(runtime: Any, account: str, region: str = HEALTH_REGION) -> None:
    """The Health endpoint of ``region`` cannot be reached from ``account``'s client: every call raises botocore's
    ``EndpointConnectionError`` (what botocore raises, after its own retries, when the endpoint does not answer).
    Raised at ``before-call``, so botocore's retry back-off does not sleep in the test."""
    client = health_client(runtime, account, region)

    def refuse(model: Any, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://health.{region}.amazonaws.com/")

    client.meta.events.register("before-call.health.*", refuse)


def stub_health(runtime: Any, notice: dict[str, Any], *, known: bool = True, status: str = "open",
                started: datetime | None = None, entities: list[str] | None = None, error: str = "",
                region: str = "", code: str = "", stubber: Stubber | None = None,
                endpoint: str = HEALTH_REGION) -> Stubber:
    """Queue the Health API's answers to one verification of ``notice`` (returned, activated), at the Health
    endpoint of ``endpoint``."""
    account, detail = notice["account"], notice["detail"]
    arn = detail["eventArn"]
    stubber = stubber or Stubber(health_client(runtime, account, endpoint))
    if error:
        stubber.add_client_error("describe_event_details", service_error_code=error, http_status_code=403,
                                 expected_params={"eventArns": [arn]})
        stubber.activate()
        return stubber
    if not known:
        stubber.add_response("describe_event_details", {"successfulSet": [], "failedSet": [
            {"eventArn": arn, "errorName": "EventNotFound", "errorMessage": "Could not find event."}]},
            {"eventArns": [arn]})
        stubber.activate()
        return stubber
    start = started or datetime.now(timezone.utc) - timedelta(minutes=5)
    stubber.add_response("describe_event_details", {"successfulSet": [{"event": {
        "arn": arn, "service": "LAMBDA", "eventTypeCode": code or detail["eventTypeCode"],
        "eventTypeCategory": "accountNotification", "region": region or notice["region"], "startTime": start,
        "lastUpdatedTime": start, "statusCode": status, "eventScopeCode": "ACCOUNT_SPECIFIC"},
        "eventDescription": {"latestDescription": "Lambda stopped a function that was invoking itself in a loop."}}],
        "failedSet": []}, {"eventArns": [arn]})
    named = entities if entities is not None else [e["entityValue"] for e in detail.get("affectedEntities") or []]
    stubber.add_response("describe_affected_entities", {"entities": [
        {"entityArn": f"arn:aws:health:{HEALTH_REGION}:{account}:entity/{i}", "eventArn": arn, "entityValue": value,
         "awsAccountId": account, "lastUpdatedTime": start, "statusCode": "IMPAIRED"}
        for i, value in enumerate(named)]}, {"filter": {"eventArns": [arn]}})
    stubber.activate()
    return stubber
