"""Wiring: build the engine's parts from the environment (the contract settings) once per process.

=============================  ===========================================================
``SAFETYCATCH_MODE``           enforce | dry-run | off (default enforce)
``SAFETYCATCH_TABLE``          DynamoDB state table; unset: state in memory for this run
``SAFETYCATCH_POLICIES``       policies directory (YAML); unset: the compiled policies
``SAFETYCATCH_MODE_PARAMETER`` SSM parameter whose value overrides ``SAFETYCATCH_MODE`` (deployed
                               bot; read through Powertools Parameters, cached 60 s)
``SAFETYCATCH_MEMBER_ROLE``    role assumed in member accounts (default safetycatch-remediation)
``SAFETYCATCH_EXTERNAL_ID``    external id the member role requires
``SAFETYCATCH_SWEEP_REGIONS``  regions the bot covers (comma-separated; default its own): swept on
                               schedule (chalicelib/org/fanout.py), and an IAM change, recorded in
                               us-east-1 only, re-evaluates the role's functions in each
``SAFETYCATCH_SLACK_*``        Slack (see chalicelib/slack/client.py): with a secret and a channel the
                               notifier posts to Slack, as ``replay`` and ``scan --fix`` do too
``SAFETYCATCH_SECURITYHUB``    on | off (default off): import findings into Security Hub as ASFF
                               when the bot acts (see chalicelib/exports/securityhub.py)
=============================  ===========================================================

Dry-run makes zero AWS writes: the gateway only records, and state and idempotency stay in memory.

Example:
    runtime = Runtime.from_env()
    engine = runtime.engine("123456789012", "us-east-1")
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from chalicelib.act.gateway import Gateway
from chalicelib.core import quotas
from chalicelib.core.aws import CLIENT_LOCK, RETRY_CONFIG, Clients, error_code
from chalicelib.core.log import logger
from chalicelib.core.model import GLOBAL_MODES
from chalicelib.decide.engine import Engine, LogNotifier, Notifier
from chalicelib.exports import securityhub
from chalicelib.intake.dedupe import Deduplicator
from chalicelib.inventory import AccountFactsCache, Inventory
from chalicelib.org import accounts
from chalicelib.policy import settings as settings_module
from chalicelib.policy.settings import PolicySet
from chalicelib.store.state import DynamoTable, InvokerIndex, StateStore, open_store


class ConfigError(ValueError):
    """A setting in the environment is invalid (one line, shown as is)."""


def mode_from_env() -> str:
    mode = os.environ.get("SAFETYCATCH_MODE", "enforce").strip().lower() or "enforce"
    if mode not in GLOBAL_MODES:
        raise ConfigError(f"SAFETYCATCH_MODE: expected one of {', '.join(GLOBAL_MODES)}, got {mode[:40]!r}")
    return mode


def regions_from_env() -> tuple[str, ...]:
    """``SAFETYCATCH_SWEEP_REGIONS`` as region names (empty when unset); a malformed name is a ``ConfigError``."""
    from chalicelib.org.scopes import parse_regions

    raw = os.environ.get("SAFETYCATCH_SWEEP_REGIONS", "").strip()
    try:
        return tuple(parse_regions(raw)) if raw else ()
    except ValueError as exc:
        raise ConfigError(str(exc).replace("--regions", "SAFETYCATCH_SWEEP_REGIONS")) from None


MODE_MAX_AGE_SECONDS = 60  # how long an operator waits for a mode switch in SSM to take effect
# A value read from SSM is kept this long when the parameter later cannot be read (deleted, denied, throttled):
# the Powertools cache (MODE_MAX_AGE_SECONDS) plus a grace, so one SSM hiccup does not switch a healthy bot off.
MODE_LAST_KNOWN_SECONDS = 5 * MODE_MAX_AGE_SECONDS


def read_mode(parameter: str, provider: Any) -> str | None:
    """The mode in the SSM ``parameter`` through the Powertools ``provider`` (cached ``MODE_MAX_AGE_SECONDS``):
    ``off`` for an invalid value (fail closed), None when the parameter is missing or cannot be read."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        raw = provider.get(parameter, max_age=MODE_MAX_AGE_SECONDS)
    except GetParameterError as exc:
        logger.error("mode parameter missing or unreadable; failing closed",
                     extra={"parameter": parameter, "error_code": error_code(exc.__context__ or exc),
                            "error": str(exc)[:300]})
        return None
    value = str(raw).strip().lower()
    if value not in GLOBAL_MODES:
        logger.error("INVALID safetycatch mode in SSM: the bot is OFF until it is fixed",
                     extra={"parameter": parameter, "value": str(raw)[:40], "expected": list(GLOBAL_MODES)})
        return "off"
    return value


def mode_override(parameter: str, provider: Any, last_known: tuple[str, float] | None = None,
                  now: float | None = None) -> str:
    """The global mode from the SSM ``parameter``. Fails closed: an invalid value turns the bot ``off``; a
    parameter that is configured but missing (deleted) or unreadable keeps the last value read
    (``last_known``: ``(mode, read_at)``) for ``MODE_LAST_KNOWN_SECONDS``, else ``off``. It never falls back
    to ``SAFETYCATCH_MODE`` (``enforce``) by itself.

    Example:
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        mode_override("/safetycatch/prod/mode", SSMProvider())
        # -> 'dry-run'
    """
    value = read_mode(parameter, provider)
    return value if value is not None else fallback_mode(last_known, time.time() if now is None else now)


def fallback_mode(last_known: tuple[str, float] | None, now: float) -> str:
    """The last mode read if it was read at most ``MODE_LAST_KNOWN_SECONDS`` before ``now``, else ``off``."""
    if last_known is not None and now - last_known[1] <= MODE_LAST_KNOWN_SECONDS:
        return last_known[0]
    return "off"


@dataclass
class Runtime:
    """Everything a handler needs, built once per Lambda container (or CLI run)."""

    policy_set: PolicySet
    mode: str = "enforce"
    table: str | None = None
    session: Any = None
    notifier: Notifier = field(default_factory=LogNotifier)
    slack: Any = None  # chalicelib.slack.client.Slack when SAFETYCATCH_SLACK_SECRET is set
    account: str = ""
    _clients: dict[str, Clients] = field(default_factory=dict)
    _store: StateStore | None = None
    _dedupe: Deduplicator | None = None
    mode_parameter: str | None = None
    member_role: str = accounts.DEFAULT_MEMBER_ROLE
    external_id: str | None = None
    _mode_provider: Any = None
    _mode_last_read: tuple[str, float] | None = None  # (mode, when) of the last valid value read from SSM
    clock: Any = time.time
    _sessions: dict[str, Any] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    account_facts: AccountFactsCache = field(default_factory=AccountFactsCache)  # per container, a few minutes
    securityhub: bool = False
    _account_names: dict[str, str] = field(default_factory=dict)
    sleep: Any = time.sleep  # how the gateway waits before a retry (a test world's clock in tests)

    @classmethod
    def from_env(cls, policies_dir: str | None = None, mode: str | None = None,
                 region: str | None = None, profile: str | None = None) -> Runtime:
        """Read the contract settings; raise ``ConfigError`` / ``PolicyError`` with one clear line.
        ``region`` / ``profile`` override the boto3 chain's (the CLI's ``--region`` / ``--profile``)."""
        session = boto3.session.Session(region_name=region or None, profile_name=profile or None)
        table = os.environ.get("SAFETYCATCH_TABLE") or None
        if table and not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
            raise ConfigError(f"SAFETYCATCH_TABLE: {table[:60]!r} is not a DynamoDB table name")
        runtime = cls(policy_set=settings_module.load(policies_dir), mode=mode or mode_from_env(), table=table,
                      session=session)
        quotas.configure(share=runtime.settings.max_quota_share)
        runtime.mode_parameter = os.environ.get("SAFETYCATCH_MODE_PARAMETER", "").strip() or None
        runtime.member_role, runtime.external_id = accounts.member_role_name(), accounts.external_id()
        runtime.regions = regions_from_env()
        runtime.securityhub = securityhub.enabled(os.environ.get(securityhub.ENV))
        attach_slack(runtime)
        return runtime

    def refresh_mode(self) -> str:
        """Apply the operator's mode from the SSM parameter, if one is configured (the deployed bot calls
        this once per invocation; Powertools caches the value). State and idempotency are rebuilt on a
        change so that a switch to dry-run stops every write at once."""
        if not self.mode_parameter:
            return self.mode
        if self._mode_provider is None:
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            self._mode_provider = SSMProvider(boto3_session=self.session, boto_config=RETRY_CONFIG)
        now = self.clock()
        value = read_mode(self.mode_parameter, self._mode_provider)
        if value is not None:
            self._mode_last_read = (value, now)
        mode = value if value is not None else fallback_mode(self._mode_last_read, now)
        if mode != self.mode:
            logger.warning("safetycatch mode changed", extra={"from": self.mode, "to": mode,
                                                              "parameter": self.mode_parameter})
            self.mode, self._store, self._dedupe = mode, None, None
        return self.mode

    @property
    def settings(self) -> settings_module.Settings:
        return self.policy_set.settings

    @property
    def home_region(self) -> str:
        return self.session.region_name or os.environ.get("AWS_REGION") or "us-east-1"

    @property
    def covered_regions(self) -> tuple[str, ...]:
        """The regions whose functions the bot looks after: ``SAFETYCATCH_SWEEP_REGIONS``, else its own."""
        return self.regions or (self.home_region,)

    def clients(self, region: str | None = None, account: str | None = None) -> Clients:
        """Clients for ``region`` in the bot's account, or in ``account`` through its member role."""
        region = region or self.home_region
        foreign = bool(account) and account != self.bot_account()
        key = f"{account}/{region}" if foreign else region
        with CLIENT_LOCK:
            if key not in self._clients:
                session = self.member_session(str(account)) if foreign else self.session
                self._clients[key] = Clients(region, session, account=account if foreign else None)
            return self._clients[key]

    def member_session(self, account: str) -> Any:
        """The assumed-role session for a member account (one per account, refreshed by botocore)."""
        with CLIENT_LOCK:
            if account not in self._sessions:
                self._sessions[account] = accounts.assumed_session(
                    self.session, account, self.member_role, self.external_id, self.home_region)
            return self._sessions[account]

    @property
    def writes_state(self) -> bool:
        """State goes to DynamoDB only when a table is set and the bot is not in dry-run."""
        return bool(self.table) and self.mode == "enforce"

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.clients(), self.table if self.writes_state else None)
        return self._store

    @property
    def dedupe(self) -> Deduplicator:
        if self._dedupe is None:
            self._dedupe = Deduplicator(self.table if self.writes_state else None, self.session)
        return self._dedupe

    def account_label(self, account: str) -> str:
        """How messages name an account: '' for the bot's own; else ``account 111111111111 (its name)``, the
        name from Organizations where readable (once per container)."""
        if not account or account == self.bot_account():
            return ""
        if account not in self._account_names:
            self._account_names[account] = accounts.account_name(self.session, account)
        name = self._account_names[account]
        return f"account {account}" + (f" ({name})" if name else "")

    def bot_account(self) -> str:
        """This bot's account: set from the Lambda context when deployed, else asked of STS once."""
        if not self.account:
            self.account = self.clients().account_id()
        return self.account

    def engine(self, account: str, region: str) -> Engine:
        """An engine reading and fixing ``account`` / ``region`` (a member account through its role)."""
        clients = self.clients(region, account)
        gateway = Gateway(clients, dry_run=self.mode == "dry-run", sleep=self.sleep)
        inventory = Inventory(clients, account, facts=self.account_facts)
        if self.table and not self.writes_state:  # dry-run: read the durable invoker index, write only to memory
            inventory.apis.index = InvokerIndex(self.store.table, self.store.clock,
                                                reads=DynamoTable(self.clients(), self.table))
        engine = Engine(self.policy_set, inventory, gateway, self.store, self.mode, self.notifier)
        if self.securityhub:
            engine.sink = securityhub.SecurityHubSink(clients, account)
        return engine


def attach_slack(runtime: Runtime) -> None:
    """Give ``runtime`` its Slack when ``SAFETYCATCH_SLACK_SECRET`` is set, and post through it when a channel
    is set too (``Runtime.from_env`` calls this, so ``replay`` and ``scan --fix`` post as the deployed bot).
    The runtime is where the bot is wired together: the only deployed module besides the Slack ones that
    knows Slack (slack-sdk is imported on first use)."""
    from chalicelib.slack.client import Slack
    from chalicelib.slack.messages import SlackNotifier

    runtime.slack = Slack.from_env(runtime.session)
    if runtime.slack is not None and runtime.slack.channel:
        runtime.notifier = SlackNotifier(runtime.slack, runtime.slack.channel, lambda: runtime.store)
