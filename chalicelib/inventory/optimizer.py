"""AWS Compute Optimizer's Lambda memory recommendations (memory-cpu): evidence instead of an estimate.

A sweep reads every recommendation of the account once (GetLambdaFunctionRecommendations pages of 1,000); an
event asks for its one function. Where the account has not opted in, the caller may not read them, or the API
is not there, each snapshot says why (``unavailable["recommendations"]``) and the check keeps its estimate.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.
What moto cannot show: moto has no Compute Optimizer. The tests stub only GetLambdaFunctionRecommendations
(botocore ``Stubber`` on the real client) with responses shaped by botocore's service model; the permissions
(compute-optimizer:GetLambdaFunctionRecommendations, plus lambda:ListFunctions and
lambda:ListProvisionedConcurrencyConfigs, which the Compute Optimizer user guide requires to view Lambda
recommendations) are checked against tests/cli/build/test_iam.py's generated policies.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_transient, is_unsupported
from chalicelib.core.model import FunctionSnapshot, MemoryRecommendation
from chalicelib.inventory.common import ReadContext, Reader, _unqualified

PAGE = 1000  # maxResults's maximum


def recommendation(item: dict[str, Any]) -> MemoryRecommendation:
    """A Compute Optimizer ``LambdaFunctionRecommendation`` as the check reads it (the rank-1 option).

    Example:
        >>> recommendation({"finding": "NotOptimized", "findingReasonCodes": ["MemoryUnderprovisioned"],
        ...     "memorySizeRecommendationOptions": [{"rank": 1, "memorySize": 1024}]}).memory_mb
        1024
    """
    options = sorted(item.get("memorySizeRecommendationOptions") or [], key=lambda o: o.get("rank", 99))
    best = options[0] if options else {}
    savings = best.get("savingsOpportunity") or {}
    monthly = (savings.get("estimatedMonthlySavings") or {}).get("value")
    return MemoryRecommendation(
        finding=str(item.get("finding", "")),
        reasons=tuple(item.get("findingReasonCodes") or ()),
        memory_mb=int(best["memorySize"]) if best.get("memorySize") else None,
        monthly_savings_usd=float(monthly) if monthly is not None else None,
        savings_percent=savings.get("savingsOpportunityPercentage"),
        lookback_days=item.get("lookbackPeriodInDays"),
        performance_risk=str(item.get("currentPerformanceRisk", "")),
    )


class OptimizerReader(Reader):
    """Compute Optimizer memory recommendations (memory-cpu)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._unavailable = ""  # why Compute Optimizer would not answer, once it did not

    def load_recommendations(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``recommendations`` facet: each function's Compute Optimizer memory recommendation, if any."""
        index = self.ctx.once("recommendations", lambda: self._read_recommendations(None)) if bulk else \
            self._read_recommendations([snapshots[0].arn])
        for snapshot in snapshots:
            snapshot.memory_recommendation = (index or {}).get(snapshot.arn)
            if self._unavailable:
                snapshot.unavailable["recommendations"] = self._unavailable
            snapshot.loaded.add("recommendations")

    def _read_recommendations(self, arns: list[str] | None) -> dict[str, MemoryRecommendation] | None:
        """Function ARN → its $LATEST recommendation; None (and ``_unavailable`` set) when AWS will
        not answer. Raises only a transient error inside one event: memory-cpu otherwise keeps its estimate."""
        if self._unavailable:
            return None
        selector: dict[str, Any] = {"functionArns": arns} if arns else {"maxResults": PAGE}
        found: dict[str, MemoryRecommendation] = {}
        try:
            for page in self.clients("compute-optimizer").get_paginator(
                    "get_lambda_function_recommendations").paginate(**selector):
                for item in page.get("lambdaFunctionRecommendations", []):
                    if item.get("functionVersion", "$LATEST") == "$LATEST":
                        found[_unqualified(str(item.get("functionArn", "")))] = recommendation(item)
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            code = error_code(exc)
            self._unavailable = (
                "the account has not opted in to AWS Compute Optimizer" if code == "OptInRequiredException" else
                "GetLambdaFunctionRecommendations is not available here" if is_unsupported(exc) else
                f"GetLambdaFunctionRecommendations failed: {code or 'error'}")
            return None
        return found
