"""Build realistic runaway-loop evidence events (for the demo and tests): a CloudWatch alarm state change made
from the alarm as DescribeAlarms returns it, and an AWS Health notice about a Lambda loop.

The shapes follow tests/events/cloudwatch-AlarmStateChange-lambda-invocations.json and
health-AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION.json: in alarm events ``dimensions`` is a map, timestamps
are ``...+0000`` and ``reasonData`` is a JSON string; Health times are RFC 1123 and page fields are strings.

Example:
    alarm = cloudwatch.describe_alarms(AlarmNames=["safetycatch-runaway-thumbnailer"])["MetricAlarms"][0]
    alarm_state_change(alarm)["detail"]["configuration"]["metrics"][1]["metricStat"]["metric"]["dimensions"]
    # -> {'FunctionName': 'thumbnailer'}
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
RUNAWAY_CODE = "AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION"


def _cw_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _metric(metric: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": metric["Id"], "returnData": bool(metric.get("ReturnData", True))}
    if metric.get("Expression"):
        out["expression"] = metric["Expression"]
        if metric.get("Label"):
            out["label"] = metric["Label"]
    if metric.get("MetricStat"):
        stat, inner = metric["MetricStat"], metric["MetricStat"]["Metric"]
        out["metricStat"] = {"metric": {"namespace": inner["Namespace"], "name": inner["MetricName"],
                                        "dimensions": {d["Name"]: d["Value"] for d in inner.get("Dimensions", [])}},
                             "period": stat["Period"], "stat": stat["Stat"]}
    return out


def alarm_state_change(alarm: dict[str, Any], state: str = "ALARM", previous: str = "OK", reason: str = "",
                       datapoints: list[float] | None = None, account: str = ACCOUNT,
                       region: str = REGION) -> dict[str, Any]:
    """The EventBridge event CloudWatch emits when ``alarm`` (a DescribeAlarms item) changes state."""
    now = datetime.now(timezone.utc)
    points = datapoints or [1.0]
    reason = reason or (f"Threshold Crossed: {len(points)} out of the last {len(points)} datapoints "
                        f"[{', '.join(str(p) for p in points)}] was greater than or equal to the threshold "
                        f"({alarm.get('Threshold', 1.0)}).")
    data = json.dumps({"version": "1.0", "queryDate": _cw_time(now), "startDate": _cw_time(now),
                       "period": 60, "recentDatapoints": points, "threshold": alarm.get("Threshold", 1.0)})
    metrics = [_metric(m) for m in alarm.get("Metrics") or []]
    if not metrics and alarm.get("MetricName"):  # a single-metric alarm
        metrics = [{"id": str(uuid.uuid4()), "returnData": True, "metricStat": {
            "metric": {"namespace": alarm.get("Namespace"), "name": alarm["MetricName"],
                       "dimensions": {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}},
            "period": alarm.get("Period", 60), "stat": alarm.get("Statistic", "Sum")}}]
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": account, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm.get("AlarmArn") or f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm['AlarmName']}"],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": reason, "reasonData": data, "timestamp": _cw_time(now)},
            "previousState": {"value": previous, "reason": "Threshold Crossed: no datapoints were received.",
                              "timestamp": _cw_time(now)},
            "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": metrics},
        },
    }


def health_event(function_arns: list[str], code: str = RUNAWAY_CODE, status: str = "open", account: str = ACCOUNT,
                 region: str = REGION, event_arn: str = "") -> dict[str, Any]:
    """An AWS Health account notification from Lambda naming ``function_arns`` as affected entities."""
    now = format_datetime(datetime.now(timezone.utc), usegmt=True)
    event_arn = event_arn or f"arn:aws:health:{region}::event/LAMBDA/{code}/{code}_{uuid.uuid4()}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS Health Event", "source": "aws.health",
        "account": account, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": list(function_arns),
        "detail": {
            "eventArn": event_arn, "service": "LAMBDA", "eventTypeCode": code,
            "eventTypeCategory": "accountNotification", "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": uuid.uuid4().hex, "startTime": now, "lastUpdatedTime": now, "statusCode": status,
            "eventRegion": region,
            "eventDescription": [{"language": "en_US", "latestDescription": "Lambda stopped a function that was "
                                  "invoking itself in a loop through another AWS resource."}],
            "affectedEntities": [{"entityValue": arn, "lastUpdatedTime": now} for arn in function_arns],
            "affectedAccount": account, "page": "1", "totalPages": "1", "backupEvent": "false",
            "personas": ["OPERATIONS"],
        },
    }
