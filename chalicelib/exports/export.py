"""Findings in the formats security teams ingest: ASFF (AWS Security Hub) and OCSF (other SIEMs).

Both take the contract's finding object (``Decision.to_json()``: policy, function ARN, severity, mode, outcome,
message, fix) and read the account and region from the function's ARN, so one mapping serves a single-region
sweep, a multi-account sweep and an event. The finding id is the JSON output's ``id`` (``record_id``), stable per
function and policy: ``safetycatch/<policy>/<function ARN>``, with ``/<mapping uuid or alias>`` when a policy finds
several things on one function (``model.finding_id``), so a re-import updates a finding instead of duplicating it
and two mappings of one function stay two findings.

Example:
    >>> f = {"policy": "apigw-timeout", "function": "arn:aws:lambda:us-east-1:123456789012:function:orders-api",
    ...      "severity": "high", "mode": "auto", "outcome": "reported", "message": "Timeout 30s outlives...",
    ...      "fix": {"action": "set-timeout", "params": {"Timeout": 25}}}
    >>> a = asff(f, "2025-06-10T14:02:37Z")
    >>> a["Id"], a["Severity"]["Label"], a["RecordState"]
    ('safetycatch/apigw-timeout/arn:aws:lambda:us-east-1:123456789012:function:orders-api', 'HIGH', 'ACTIVE')
    >>> ocsf(f, 1749564157000)["compliance"]["status"]
    'Fail'
"""

from __future__ import annotations

from typing import Any

from chalicelib.checks import REGISTRY
from chalicelib.core.model import finding_id

__all__ = ["arn_parts", "asff", "finding_id", "ocsf", "product_arn", "record_id"]

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPE = "Software and Configuration Checks/AWS Security Best Practices/Lambda footguns"
OCSF_VERSION = "1.3.0"
OCSF_SEVERITY = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"), "critical": (5, "Critical")}
PRODUCT = {"name": "safetycatch", "vendor_name": "safetycatch", "version": "0.1.0"}


def arn_parts(function_arn: str) -> tuple[str, str, str]:
    """``(partition, region, account)`` of a Lambda function ARN."""
    parts = function_arn.split(":")
    return (parts[1], parts[3], parts[4]) if len(parts) >= 7 else ("aws", "", "")


def product_arn(partition: str, region: str, account: str) -> str:
    """The account's own "default" product: what BatchImportFindings accepts for custom findings."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def _title(policy: str) -> str:
    check = REGISTRY.get(policy)
    return f"safetycatch {policy}: {check.title}" if check else f"safetycatch {policy}"


def _remediation(finding: dict[str, Any]) -> str:
    fix = finding.get("fix") or {}
    if fix.get("action"):
        return f"{fix['action']} {fix.get('params', {})} (safetycatch applies it in mode {finding.get('mode')})."
    return "See the finding's description; `safetycatch explain " + str(finding["policy"]) + "` gives the details."


def record_id(finding: dict[str, Any]) -> str:
    """The one id of a finding in JSON, ASFF and OCSF: the contract finding's ``id`` (which tells apart two findings
    of one policy on one function: a mapping, an alias), else :func:`finding_id` of its policy and function.

    Example:
        >>> record_id({"id": "safetycatch/p/arn:f/uuid-1", "policy": "p", "function": "arn:f"})
        'safetycatch/p/arn:f/uuid-1'
        >>> record_id({"policy": "p", "function": "arn:f"})
        'safetycatch/p/arn:f'
    """
    return str(finding.get("id") or finding_id(finding["policy"], finding["function"]))


def asff(finding: dict[str, Any], now: str, created: str | None = None, resolved: bool = False) -> dict[str, Any]:
    """One AWS Security Finding Format record. ``resolved``: the issue is gone (fixed, or no longer found):
    ``RecordState`` ARCHIVED and ``Compliance.Status`` PASSED, which is how a finding provider closes a finding
    (BatchImportFindings may not set ``Workflow`` after creation; Security Hub reopens the finding to NEW if it
    comes back ACTIVE / FAILED)."""
    partition, region, account = arn_parts(finding["function"])
    label = str(finding["severity"]).upper()
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": record_id(finding),
        "ProductArn": product_arn(partition, region, account),
        "GeneratorId": f"safetycatch/{finding['policy']}",
        "AwsAccountId": account,
        "Types": [FINDING_TYPE],
        "CreatedAt": created or now,
        "UpdatedAt": now,
        "Severity": {"Label": label},
        "FindingProviderFields": {"Severity": {"Label": label}, "Types": [FINDING_TYPE]},
        "Title": _title(finding["policy"])[:256],
        "Description": str(finding["message"])[:1024],
        "Remediation": {"Recommendation": {"Text": _remediation(finding)[:512]}},
        "ProductFields": {"safetycatch/policy": finding["policy"], "safetycatch/mode": str(finding.get("mode", "")),
                          "safetycatch/outcome": str(finding.get("outcome", ""))},
        "Resources": [{"Type": "AwsLambdaFunction", "Id": finding["function"], "Partition": partition,
                       "Region": region}],
        "Compliance": {"Status": "PASSED" if resolved else "FAILED"},
        "RecordState": "ARCHIVED" if resolved else "ACTIVE",
    }


def ocsf(finding: dict[str, Any], time_ms: int) -> dict[str, Any]:
    """One OCSF 1.3 Compliance Finding (class 2003): ``compliance.status`` Fail, or Pass once fixed."""
    partition, region, account = arn_parts(finding["function"])
    severity_id, severity = OCSF_SEVERITY.get(str(finding["severity"]), (0, "Unknown"))
    fixed = finding.get("outcome") == "fixed"
    uid = record_id(finding)
    activity_id, activity = (3, "Close") if fixed else (1, "Create")
    return {
        "class_uid": 2003, "class_name": "Compliance Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": activity_id, "activity_name": activity, "type_uid": 200300 + activity_id,
        "type_name": f"Compliance Finding: {activity}", "time": time_ms,
        "severity_id": severity_id, "severity": severity,
        "status_id": 4 if fixed else 1, "status": "Resolved" if fixed else "New",
        "metadata": {"version": OCSF_VERSION, "product": PRODUCT, "uid": uid},
        "finding_info": {"uid": uid, "title": _title(finding["policy"]),
                         "desc": finding["message"], "types": [finding["policy"]]},
        "compliance": {"control": finding["policy"], "standards": ["safetycatch AWS Lambda footguns"],
                       "status_id": 1 if fixed else 3, "status": "Pass" if fixed else "Fail"},
        "resources": [{"uid": finding["function"], "type": "AWS::Lambda::Function",
                       "name": finding["function"].rsplit(":", 1)[-1], "region": region}],
        "cloud": {"provider": "AWS", "region": region, "account": {"uid": account, "type": "AWS Account"},
                  "partition": partition},
        "remediation": {"desc": _remediation(finding)},
        "unmapped": {"mode": finding.get("mode"), "outcome": finding.get("outcome"), "fix": finding.get("fix")},
    }
