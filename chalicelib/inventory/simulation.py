"""IAM's own answer on a possible loop (recursive-trigger): SimulatePrincipalPolicy on the execution role.

The local evaluator (:mod:`chalicelib.domain.iam_eval`) reads the role's identity policies; IAM's policy simulator also
applies the role's permissions boundary and the organisation's SCPs, and evaluates conditions. It is asked only
for the functions recursive-trigger flagged (``Check.finding_needs``), once per write the local evaluator
allows, on a concrete resource that write reaches (an S3 key under the notification's prefix...).

What moto cannot show: moto has no SimulatePrincipalPolicy (it raises NotImplementedError in-process and answers
an HTML 500 as a server). The tests stub only that call (botocore ``Stubber`` on the real IAM client) with
responses shaped by botocore's service model; the response fields read here (EvalDecision,
PermissionsBoundaryDecisionDetail, OrganizationsDecisionDetail, ResourceSpecificResults / MissingContextValues)
and the permission (iam:SimulatePrincipalPolicy on the role) are from botocore's documentation of the operation.
Where the call fails for any reason the local evaluator decides, and the finding says why.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_transient, is_unsupported
from chalicelib.core.model import FunctionSnapshot, IamDecision
from chalicelib.domain.iam_eval import can_perform
from chalicelib.domain.loops import writes
from chalicelib.inventory.common import ReadContext, Reader


def decision(results: list[dict[str, Any]]) -> IamDecision:
    """One answer from the simulator's results for a write's actions on one resource: allowed if any action is.

    Example:
        >>> decision([{"EvalActionName": "s3:PutObject", "EvalDecision": "implicitDeny",
        ...            "PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": False}}])
        IamDecision(decision='implicitDeny', blocked_by='the permissions boundary', missing_context=())
    """
    if any(r.get("EvalDecision") == "allowed" for r in results):
        return IamDecision("allowed")
    blocked, missing = "", list[str]()
    for result in results:
        if (result.get("PermissionsBoundaryDecisionDetail") or {}).get("AllowedByPermissionsBoundary") is False:
            blocked = "the permissions boundary"
        elif (result.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations") is False:
            blocked = blocked or "a service control policy"
        missing.extend(result.get("MissingContextValues") or [])
        for specific in result.get("ResourceSpecificResults") or []:
            missing.extend(specific.get("MissingContextValues") or [])
    verdicts = {str(r.get("EvalDecision")) for r in results}
    return IamDecision("explicitDeny" if "explicitDeny" in verdicts else "implicitDeny", blocked,
                       tuple(dict.fromkeys(missing)))


class SimulationReader(Reader):
    """SimulatePrincipalPolicy for the writes that may close a loop."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._unavailable = ""  # why IAM's policy simulator could not be asked, once it failed

    def load_iam_simulation(self, snapshots: list[FunctionSnapshot]) -> None:
        """The ``iam_simulation`` facet: IAM's answer on each write the local evaluator lets close a loop."""
        for snapshot in snapshots:
            policies = [(p.name, p.document) for p in snapshot.role_policies]
            for write in writes(snapshot):
                verdict = can_perform(policies, write.actions, write.target)
                if not verdict.allowed or write.key in snapshot.iam_decisions or self._unavailable:
                    continue
                answer = self._simulate(snapshot.role, write.actions, verdict.resource or write.target)
                if answer is not None:
                    snapshot.iam_decisions[write.key] = answer
            if self._unavailable:
                snapshot.unavailable["iam_simulation"] = self._unavailable
            snapshot.loaded.add("iam_simulation")

    def _simulate(self, role: str, actions: tuple[str, ...], resource: str) -> IamDecision | None:
        try:
            pages = self.clients("iam").get_paginator("simulate_principal_policy").paginate(
                PolicySourceArn=role, ActionNames=list(actions), ResourceArns=[resource])
            results = [r for page in pages for r in page.get("EvaluationResults", [])]
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            self._unavailable = ("SimulatePrincipalPolicy is not available here" if is_unsupported(exc)
                                                  else f"SimulatePrincipalPolicy failed: {error_code(exc) or 'error'}")
            return None
        except Exception as exc:  # IAM's answer only refines the local one; see the module doc
            if self.ctx.transient_raises and is_transient(exc):  # a timeout or a dropped connection, inside one event
                raise
            self._unavailable = f"SimulatePrincipalPolicy is not available here ({type(exc).__name__})"
            return None
        return decision(results)
