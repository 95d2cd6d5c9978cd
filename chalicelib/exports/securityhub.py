"""The optional Security Hub sink: findings land where security teams already look.

Enabled with ``SAFETYCATCH_SECURITYHUB=on`` (``.chalice/config.json`` per stage, or the CLI's environment). When
the bot acts (the event handlers, the scheduled sweep, ``scan --fix``, ``replay --fix``) in ``enforce`` mode,
every finding is imported into the account and region of its function (BatchImportFindings must be called from
the finding's own account with the default product ARN, so a member account's findings go through the member
role), as ASFF with an id stable per function and policy: a re-import updates the finding. A finding that was
fixed, or that a new evaluation of the same policy on the same function no longer produces, is re-imported
resolved (``RecordState`` ARCHIVED, ``Compliance.Status`` PASSED). Dry-run makes no import.

Calls (checked against the botocore model and the IAM reference, since moto accepts any input):
``securityhub:GetFindings`` (hub resource ``hub/default``; paginated, MaxResults 100) to learn which safetycatch
findings are active, and ``securityhub:BatchImportFindings`` (resource ``product/<account>/default``; at most 100
findings per call; failures come back per finding in ``FailedFindings``, not as an exception). moto implements
both but ignores GetFindings filters, so the filter is applied here too. Security Hub not enabled in a region
answers ``InvalidAccessException``: the sink then reports one clear line and the decisions stand.

Example:
    sink = SecurityHubSink(clients, "123456789012")
    sink.publish([decision.to_json()], {function_arn: {"apigw-timeout"}})
    # -> {'imported': 1, 'resolved': 0, 'failed': []}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import Clients, error_code
from chalicelib.exports.export import arn_parts, asff, product_arn, record_id

BATCH_LIMIT = 100  # BatchImportFindings: at most 100 findings per request
ENV = "SAFETYCATCH_SECURITYHUB"
TRUE = ("on", "true", "1", "yes")


class SecurityHubUnavailable(Exception):
    """Security Hub refused or is not enabled in this account / region (one line)."""


def enabled(value: str | None) -> bool:
    """``SAFETYCATCH_SECURITYHUB`` is on.

    Example:
        >>> enabled("on"), enabled("off"), enabled(None)
        (True, False, False)
    """
    return str(value or "").strip().lower() in TRUE


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SecurityHubSink:
    """Imports one account's and region's findings (``clients``: that account's, the member role's for another)."""

    def __init__(self, clients: Clients, account: str, clock: Callable[[], float] = time.time) -> None:
        self.clients, self.account, self.clock = clients, account, clock

    def _product(self, partition: str = "aws") -> str:
        return product_arn(partition, self.clients.region, self.account)

    def active(self, functions: Iterable[str]) -> dict[str, dict[str, Any]]:
        """safetycatch's ACTIVE findings on ``functions``, by id."""
        wanted = set(functions)
        filters: dict[str, Any] = {
            "ProductArn": [{"Value": self._product(), "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": "safetycatch/", "Comparison": "PREFIX"}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        }
        if len(wanted) == 1:
            filters["ResourceId"] = [{"Value": next(iter(wanted)), "Comparison": "EQUALS"}]
        found: dict[str, dict[str, Any]] = {}
        pages = self.clients("securityhub").get_paginator("get_findings").paginate(
            Filters=filters, PaginationConfig={"PageSize": 100})
        for page in pages:
            for item in page.get("Findings", []):
                resources = item.get("Resources") or [{}]
                if (str(item.get("Id", "")).startswith("safetycatch/") and item.get("RecordState") == "ACTIVE"
                        and item.get("AwsAccountId") == self.account and resources[0].get("Id") in wanted):
                    found[item["Id"]] = item
        return found

    def records(self, findings: list[dict[str, Any]], evaluated: dict[str, set[str]],
                existing: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """ASFF records: every finding (resolved when fixed), and each active finding that a new evaluation of its
        policy on its function no longer produced, resolved. Pure (no AWS)."""
        now = _iso(self.clock())
        out, current = [], set()
        for finding in findings:
            fid = record_id(finding)
            current.add(fid)
            created = existing.get(fid, {}).get("CreatedAt")
            out.append(asff(finding, now, created=created, resolved=finding.get("outcome") == "fixed"))
        for fid, old in existing.items():
            function = (old.get("Resources") or [{}])[0].get("Id", "")
            policy = str((old.get("ProductFields") or {}).get("safetycatch/policy", ""))
            if fid in current or policy not in evaluated.get(function, set()):
                continue
            gone = {"id": fid, "policy": policy, "function": function, "message": old.get("Description", ""),
                    "severity": str((old.get("Severity") or {}).get("Label", "low")).lower(),
                    "mode": (old.get("ProductFields") or {}).get("safetycatch/mode", ""), "outcome": "resolved"}
            out.append(asff(gone, now, created=old.get("CreatedAt"), resolved=True))
        return out

    def publish(self, findings: list[dict[str, Any]], evaluated: dict[str, set[str]]) -> dict[str, Any]:
        """Import ``findings`` (contract finding objects of this account and region) and resolve what is gone.
        ``evaluated``: function ARN -> the policies that really ran on it (only their findings can be resolved)."""
        findings = [f for f in findings if arn_parts(f["function"])[1:] == (self.clients.region, self.account)]
        try:
            existing = self.active(evaluated) if evaluated else {}
            records = self.records(findings, evaluated, existing)
            failed: list[str] = []
            for start in range(0, len(records), BATCH_LIMIT):
                answer = self.clients("securityhub").batch_import_findings(Findings=records[start:start + BATCH_LIMIT])
                failed += [f"{f.get('Id')}: {f.get('ErrorCode')} {f.get('ErrorMessage', '')}"[:300]
                           for f in answer.get("FailedFindings", [])]
        except ClientError as exc:
            code = error_code(exc)
            hint = " (is Security Hub enabled in this region?)" if code == "InvalidAccessException" else ""
            raise SecurityHubUnavailable(f"Security Hub {exc.operation_name} refused: {code}{hint}") from exc
        except BotoCoreError as exc:
            raise SecurityHubUnavailable(f"Security Hub unreachable: {exc}") from exc
        resolved = sum(1 for r in records if r["RecordState"] == "ARCHIVED")
        return {"imported": len(records) - resolved, "resolved": resolved, "failed": failed}
