"""Build realistic "AWS API Call via CloudTrail" EventBridge events (for the demo, the bench and tests).

The shape follows the recorded fixtures in tests/events/ (field names, casing, version-suffixed event names).

Example:
    >>> event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 60})
    >>> event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"]
    'arn:aws:iam::123456789012:role/dev-role'
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
SOURCES = {"lambda": "lambda.amazonaws.com", "apigateway": "apigateway.amazonaws.com", "s3": "s3.amazonaws.com",
           "ec2": "ec2.amazonaws.com", "iam": "iam.amazonaws.com"}


def identity(role: str = "dev-role", session: str = "alice", account: str = ACCOUNT) -> dict[str, Any]:
    """``userIdentity`` of an assumed-role session, as CloudTrail records it."""
    principal = "AROA" + uuid.uuid5(uuid.NAMESPACE_DNS, role).hex[:17].upper()
    return {
        "type": "AssumedRole", "principalId": f"{principal}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
        "accessKeyId": "ASIA" + uuid.uuid4().hex[:16].upper(),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": principal, "arn": f"arn:aws:iam::{account}:role/{role}",
                              "accountId": account, "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": _now(), "mfaAuthenticated": "false"},
        },
    }


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_call(event_name: str, request: dict[str, Any] | None, response: dict[str, Any] | None = None,
             service: str = "lambda", role: str = "dev-role", session: str = "alice", account: str = ACCOUNT,
             region: str = REGION, error_code: str = "", event_id: str = "") -> dict[str, Any]:
    """One EventBridge event for a CloudTrail management API call."""
    detail: dict[str, Any] = {
        "eventVersion": "1.08", "userIdentity": identity(role, session, account), "eventTime": _now(),
        "eventSource": SOURCES.get(service, f"{service}.amazonaws.com"), "eventName": event_name,
        "awsRegion": region, "sourceIPAddress": "203.0.113.24",
        "userAgent": f"aws-cli/2.27.31 md/command#{service}.{event_name.lower()}",
        "requestParameters": request, "responseElements": response,
        "requestID": str(uuid.uuid4()), "eventID": event_id or str(uuid.uuid4()), "readOnly": False,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        detail.update(errorCode=error_code, requestParameters=None, responseElements=None,
                      errorMessage=f"User: arn:aws:sts::{account}:assumed-role/{role}/{session} is not authorized "
                                   f"to perform: {service}:{event_name.rstrip('0123456789v')}")
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
            "source": f"aws.{service}", "account": account, "time": _now(), "region": region, "resources": [],
            "detail": detail}
