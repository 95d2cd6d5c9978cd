"""Wiring: build the engine's parts from the environment (the contract settings) once per process.

=============================  ===========================================================
``SAFETYCATCH_MODE``           enforce | dry-run | off (default enforce)
``SAFETYCATCH_TABLE``          DynamoDB state table; unset: state in memory for this run
``SAFETYCATCH_POLICIES``       policies directory (YAML); unset: the compiled policies
``SAFETYCATCH_SLACK_*``        Slack (see chalicelib/slack.py): with a secret and a channel the
                               notifier posts to Slack, as ``replay`` and ``scan --fix`` do too
=============================  ===========================================================

Dry-run makes zero AWS writes: the gateway only records, and state and idempotency stay in memory.

Example:
    >>> runtime = Runtime.from_env()
    >>> engine = runtime.engine("123456789012", "us-east-1")
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import boto3

from chalicelib import settings as settings_module
from chalicelib.aws import Clients
from chalicelib.dedupe import Deduplicator
from chalicelib.engine import Engine, LogNotifier, Notifier
from chalicelib.gateway import Gateway
from chalicelib.inventory import Inventory
from chalicelib.model import GLOBAL_MODES
from chalicelib.settings import PolicySet
from chalicelib.state import StateStore, open_store


class ConfigError(ValueError):
    """A setting in the environment is invalid (one line, shown as is)."""


def mode_from_env() -> str:
    mode = os.environ.get("SAFETYCATCH_MODE", "enforce").strip().lower() or "enforce"
    if mode not in GLOBAL_MODES:
        raise ConfigError(f"SAFETYCATCH_MODE: expected one of {', '.join(GLOBAL_MODES)}, got {mode[:40]!r}")
    return mode


@dataclass
class Runtime:
    """Everything a handler needs, built once per Lambda container (or CLI run)."""

    policy_set: PolicySet
    mode: str = "enforce"
    table: Optional[str] = None
    session: Any = None
    notifier: Notifier = field(default_factory=LogNotifier)
    slack: Any = None  # chalicelib.slack.Slack when SAFETYCATCH_SLACK_SECRET is set
    account: str = ""
    _clients: dict[str, Clients] = field(default_factory=dict)
    _store: Optional[StateStore] = None
    _dedupe: Optional[Deduplicator] = None

    @classmethod
    def from_env(cls, policies_dir: Optional[str] = None, mode: Optional[str] = None,
                 region: Optional[str] = None) -> "Runtime":
        """Read the contract settings; raise ``ConfigError`` / ``PolicyError`` with one clear line."""
        session = boto3.session.Session(region_name=region) if region else boto3.session.Session()
        table = os.environ.get("SAFETYCATCH_TABLE") or None
        if table and not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table):
            raise ConfigError(f"SAFETYCATCH_TABLE: {table[:60]!r} is not a DynamoDB table name")
        runtime = cls(policy_set=settings_module.load(policies_dir), mode=mode or mode_from_env(), table=table,
                      session=session)
        from chalicelib.slack_messages import attach_slack

        attach_slack(runtime)
        return runtime

    @property
    def settings(self) -> settings_module.Settings:
        return self.policy_set.settings

    @property
    def home_region(self) -> str:
        return self.session.region_name or os.environ.get("AWS_REGION") or "us-east-1"

    def clients(self, region: Optional[str] = None) -> Clients:
        region = region or self.home_region
        if region not in self._clients:
            self._clients[region] = Clients(region, self.session)
        return self._clients[region]

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

    def bot_account(self) -> str:
        """This bot's account: set from the Lambda context when deployed, else asked of STS once."""
        if not self.account:
            self.account = self.clients().account_id()
        return self.account

    def engine(self, account: str, region: str, max_writes: Optional[int] = None) -> Engine:
        clients = self.clients(region)
        gateway = Gateway(clients, dry_run=self.mode == "dry-run", max_writes=max_writes)
        return Engine(self.policy_set, Inventory(clients, account), gateway, self.store, self.mode, self.notifier)
