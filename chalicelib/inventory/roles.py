"""Execution-role policies for recursive-trigger: the account's authorization details in a sweep, one role's
policies for an event.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from chalicelib.core.aws import is_not_found
from chalicelib.core.model import FunctionSnapshot, RolePolicy
from chalicelib.inventory.common import ReadContext, Reader


class RoleReader(Reader):
    """Execution-role policies (recursive-trigger)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._roles: dict[str, tuple[RolePolicy, ...] | None] = {}
        self._managed: dict[str, dict[str, Any]] = {}
        self._authorization_read = False

    def load_role_policies(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``role_policies`` facet: each function's execution-role policies (inline and managed)."""
        if bulk:
            self.warm()
        for snapshot in snapshots:
            name = _role_name(snapshot.role)
            if name not in self._roles:
                self._roles[name] = None if self._authorization_read else self._read_role(name)
            policies = self._roles[name]
            if policies is None:
                snapshot.unavailable["role_policies"] = f"execution role {name or snapshot.role!r} not found"
            snapshot.role_policies = policies or ()
            snapshot.loaded.add("role_policies")

    def warm(self) -> None:
        """Read the account's role and managed-policy documents (GetAccountAuthorizationDetails), once a run."""
        self.ctx.once("authorization_details", self._read_authorization_details)

    def _read_authorization_details(self) -> None:
        roles: list[dict[str, Any]] = []
        pages = self.clients("iam").get_paginator("get_account_authorization_details").paginate(
            Filter=["Role", "LocalManagedPolicy"])
        for page in pages:
            roles.extend(page.get("RoleDetailList", []))
            for policy in page.get("Policies", []):
                versions = policy.get("PolicyVersionList", [])
                default: dict[str, Any] = next((v for v in versions if v.get("IsDefaultVersion")), {})
                self._managed[policy["Arn"]] = _document(default.get("Document"))
        for role in roles:
            inline = tuple(RolePolicy(p["PolicyName"], "inline", _document(p.get("PolicyDocument")))
                           for p in role.get("RolePolicyList", []))
            self._roles[role["RoleName"]] = inline + tuple(
                self._managed_policy(a["PolicyArn"], a.get("PolicyName", ""))
                for a in role.get("AttachedManagedPolicies", [])
            )
        self._authorization_read = True

    def _read_role(self, name: str) -> tuple[RolePolicy, ...] | None:
        iam = self.clients("iam")
        try:
            names = [n for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
                     for n in page.get("PolicyNames", [])]
            inline = tuple(RolePolicy(n, "inline", _document(iam.get_role_policy(RoleName=name, PolicyName=n)
                                                              .get("PolicyDocument"))) for n in names)
            attached = [a for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
                        for a in page.get("AttachedPolicies", [])]
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return inline + tuple(self._managed_policy(a["PolicyArn"], a.get("PolicyName", "")) for a in attached)

    def roles_attaching(self, policy_arn: str) -> set[str]:
        """Names of the roles a managed policy is attached to (ListEntitiesForPolicy); empty when it is gone."""
        paginator = self.clients("iam").get_paginator("list_entities_for_policy")
        try:
            return {r["RoleName"] for page in paginator.paginate(PolicyArn=policy_arn, EntityFilter="Role")
                    for r in page.get("PolicyRoles", [])}
        except ClientError as exc:
            if is_not_found(exc):
                return set()
            raise

    def _managed_policy(self, arn: str, name: str) -> RolePolicy:
        if arn not in self._managed:
            iam = self.clients("iam")
            try:
                version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"].get("Document")
                self._managed[arn] = _document(document)
            except ClientError as exc:
                if not is_not_found(exc):
                    raise
                self._managed[arn] = {}
        return RolePolicy(name or arn.rsplit("/", 1)[-1], arn, self._managed[arn])


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1] if ":role/" in role_arn else ""


def _document(document: Any) -> dict[str, Any]:
    """A policy document as a dict (boto3 decodes IAM documents; a URL-encoded string is accepted too)."""
    if isinstance(document, dict):
        return document
    if isinstance(document, str):
        for text in (document, unquote(document)):
            try:
                parsed = json.loads(text)
                return parsed if isinstance(parsed, dict) else {}
            except ValueError:
                continue
    return {}

