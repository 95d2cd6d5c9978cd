"""Other accounts of an AWS Organization: the remediation role the bot assumes in each member account.

A member account runs the ``deploy/member-account.yaml`` stack (StackSets): a role named
``SAFETYCATCH_MEMBER_ROLE`` (default ``safetycatch-remediation``) that trusts only the bot's account and only
with the external id ``SAFETYCATCH_EXTERNAL_ID``. The bot reads and fixes a member account's functions
through a boto3 session on that role; botocore refreshes the credentials before they expire.

Example:
    session = assumed_session(boto3.session.Session(), "111111111111", "safetycatch-remediation",
                              external_id="safetycatch-prod")
    Clients("us-east-1", session).account_id()
    # -> '111111111111'
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
from botocore.credentials import AssumeRoleCredentialFetcher, CredentialProvider, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import CLIENT_LOCK, RETRY_CONFIG

DEFAULT_MEMBER_ROLE = "safetycatch-remediation"
SESSION_NAME = "safetycatch"
ACCOUNT_ID = re.compile(r"^\d{12}$")


def member_role_name() -> str:
    """The role name the bot assumes in member accounts (``SAFETYCATCH_MEMBER_ROLE``)."""
    return os.environ.get("SAFETYCATCH_MEMBER_ROLE", "").strip() or DEFAULT_MEMBER_ROLE


def external_id() -> str | None:
    """The external id the member role requires (``SAFETYCATCH_EXTERNAL_ID``; None when unset)."""
    return os.environ.get("SAFETYCATCH_EXTERNAL_ID", "").strip() or None


def role_arn(account: str, role_name: str, partition: str = "aws") -> str:
    """``arn:aws:iam::<account>:role/<role_name>`` (the account is checked: 12 digits)."""
    if not ACCOUNT_ID.match(account):
        raise ValueError(f"not an AWS account id: {account[:20]!r}")
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def assumed_session(base: boto3.session.Session, account: str, role_name: str,
                    external_id: str | None = None, region: str | None = None) -> boto3.session.Session:
    """A boto3 session on ``role_name`` in ``account``, assumed lazily (on the first call) with ``base``'s
    credentials and refreshed by botocore before it expires.

    Example:
        session = assumed_session(boto3.session.Session(), "111111111111", "safetycatch-remediation")
        session.client("lambda").list_functions()["Functions"]
        # -> []
    """
    source = base.get_credentials()
    extra: dict[str, Any] = {"RoleSessionName": SESSION_NAME}
    if external_id:
        extra["ExternalId"] = external_id

    def create_client(service: str, **kwargs: Any) -> Any:
        return _source_client(base, service, region, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(create_client, source, role_arn(account, role_name), extra_args=extra)
    credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", _FixedProvider(credentials))
    # Service models and endpoint rules are the same for every account: share the base session's loader (it
    # caches what it parsed), so a member's clients are built in milliseconds, not a third of a second each.
    core.register_component("data_loader", base._session.get_component("data_loader"))
    return boto3.session.Session(botocore_session=core, region_name=region or base.region_name)


# base session -> (service, region, source credentials) -> client; gone with the session
_SOURCE_CLIENTS: weakref.WeakKeyDictionary[boto3.session.Session, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary())


def _source_client(base: boto3.session.Session, service: str, region: str | None, **kwargs: Any) -> Any:
    """The STS client that assumes member roles, one per base session, region and source credentials (botocore
    asks for a new one at every account's first call and every refresh; building it again per account repeats
    the client's setup for nothing: clients are thread-safe). A change of the source's keys makes a new one.

    Example:
        >>> base = boto3.session.Session(region_name="us-east-1", aws_access_key_id="AKIA", aws_secret_access_key="s")
        >>> _source_client(base, "sts", None) is _source_client(base, "sts", None)
        True
    """
    kwargs.setdefault("region_name", base.region_name or region)
    kwargs.setdefault("config", RETRY_CONFIG)
    key = (service, kwargs["region_name"], *(kwargs.get(k) for k in (
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token")))
    with CLIENT_LOCK:
        clients = _SOURCE_CLIENTS.setdefault(base, {})
        if key not in clients:
            clients.clear()  # rotated source credentials: the old client is not needed again
            clients[key] = base.client(service, **kwargs)
        return clients[key]


class _FixedProvider(CredentialProvider):
    """Hands botocore's credential chain the refreshable assumed-role credentials (first in the chain)."""

    METHOD = "assume-role"
    CANONICAL_NAME = "safetycatch-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self.credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self.credentials


def account_name(session: boto3.session.Session, account: str) -> str:
    """The account's name in the organization (Organizations DescribeAccount, from the management or a
    delegated administrator account); '' where it cannot be read (not an organization, no permission).

    Example:
        account_name(boto3.session.Session(), "111111111111")
        # -> 'payments-prod'
    """
    try:
        client = session.client("organizations", config=RETRY_CONFIG)
        return str(client.describe_account(AccountId=account)["Account"].get("Name") or "")[:64]
    except (ClientError, BotoCoreError):
        return ""


def organization_accounts(session: boto3.session.Session) -> Iterator[str]:
    """Ids of the organization's active accounts (Organizations ListAccounts; management or delegated
    administrator account only).

    Example:
        sorted(organization_accounts(boto3.session.Session()))
        # -> ['111111111111', '123456789012']
    """
    client = session.client("organizations", config=RETRY_CONFIG)
    for page in client.get_paginator("list_accounts").paginate():
        for account in page.get("Accounts", []):
            state = account.get("State") or account.get("Status") or "ACTIVE"
            if state == "ACTIVE":
                yield str(account["Id"])


# -- the management account ------------------------------------------------------------------------------------
# Service-managed StackSets never deploy to the organisation's management account, so it has no member role unless
# someone deployed deploy/member-account.yaml there by hand (then SAFETYCATCH_MANAGEMENT_ACCOUNT=covered says so).
MANAGEMENT_ENV = "SAFETYCATCH_MANAGEMENT_ACCOUNT"
NOT_COVERED = ("not covered: the organisation's management account (service-managed StackSets never deploy there); "
               f"deploy the member stack there by hand, then set {MANAGEMENT_ENV}=covered")


def uncovered_management_account(session: boto3.session.Session, bot_account: str) -> str | None:
    """The management account's id when the bot does not cover it: not the bot's own account, and not declared
    covered (``SAFETYCATCH_MANAGEMENT_ACCOUNT=covered``). None otherwise, or when Organizations does not say.

    Example:
        uncovered_management_account(boto3.session.Session(), "222222222222")
        # -> '111111111111' (the management account, whose member stack StackSets never deploy)
    """
    if os.environ.get(MANAGEMENT_ENV, "").strip().lower() == "covered":
        return None
    try:
        organization = session.client("organizations", config=RETRY_CONFIG).describe_organization()["Organization"]
    except (ClientError, BotoCoreError):
        return None
    management = str(organization.get("MasterAccountId") or "")
    return management if ACCOUNT_ID.match(management) and management != bot_account else None
