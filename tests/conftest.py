"""Shared fixtures: moto as the AWS of every test, a runtime wired to it, and an AWS call recorder.

* ``aws``       in-process moto (``mock_aws``) with a ``SandboxAccount`` to build functions in it
* ``runtime``   a ``Runtime`` over the repo's policies (state in memory unless a test sets a table)
* ``calls``     every AWS operation the code makes, recorded through botocore's event hooks
* ``event``     load a recorded EventBridge fixture from tests/events/ (deep copy, safe to edit)
* ``stub_only`` botocore Stubber on a real client for the operations moto lacks, and only those
* ``captured_log`` the bot's structured log lines during a test
* ``local_slack`` / ``slack_bot`` the local Slack, and the bot configured for it as deployed (repo policies with
  approvers)
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import settings as hypothesis_settings
from moto import mock_aws

from chalicelib.bot import handlers
from chalicelib.bot.runtime import Runtime
from chalicelib.core import quotas
from safetycatch.local.sandbox import FAKE_CREDENTIALS, SandboxAccount

ROOT = Path(__file__).resolve().parent.parent
EVENTS = Path(__file__).resolve().parent / "events"
POLICIES = ROOT / "policies"

# Property tests are deterministic by default, so a green suite stays green on CI; explore new examples with
# HYPOTHESIS_PROFILE=explore make test.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Search", "Lookup", "Filter")
READ_OPERATIONS = {"logs.StartQuery",  # a Logs Insights query reads logs; it changes nothing
                   "iam.SimulatePrincipalPolicy"}  # IAM evaluates policies; it changes nothing


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test can reach a real AWS account or inherit an operator's settings."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "SAFETYCATCH_")):
            monkeypatch.delenv(key, raising=False)
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    handlers.reset_runtime(None)
    yield
    handlers.reset_runtime(None)


@pytest.fixture(autouse=True)
def _virtual_pacing() -> Iterator[quotas.Pacer]:
    """The bot paces its requests to its share of AWS's quotas (chalicelib/core/quotas.py) on a virtual clock in
    tests: nothing waits on the wall clock, and each test starts with nothing reserved."""
    yield quotas.configure(share=quotas.DEFAULT_SHARE, clock=quotas.ManualClock(), enabled=True)


@pytest.fixture
def aws() -> Iterator[SandboxAccount]:
    with mock_aws():
        yield SandboxAccount()


class CallRecorder:
    """Records ``service.Operation`` for every AWS API call made through boto3 sessions it watches."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def watch(self, session: boto3.session.Session) -> None:
        session.events.register("before-call", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls
                if not c.split(".", 1)[1].startswith(READ_PREFIXES) and c not in READ_OPERATIONS]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def calls() -> CallRecorder:
    return CallRecorder()


@pytest.fixture
def make_runtime(aws: SandboxAccount, calls: CallRecorder) -> Callable[..., Runtime]:
    """Build a runtime on moto: ``make_runtime(mode="dry-run", policies=dir)``; its calls are recorded."""

    def build(mode: str = "enforce", policies: Path | str = POLICIES, table: str | None = None) -> Runtime:
        if table:
            os.environ["SAFETYCATCH_TABLE"] = table
        runtime = Runtime.from_env(str(policies), mode=mode, region="us-east-1")
        runtime.account = "123456789012"
        calls.watch(runtime.session)
        return runtime

    return build


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


@pytest.fixture
def event() -> Callable[[str], dict[str, Any]]:
    def load(name: str) -> dict[str, Any]:
        return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))

    return load


class OnlyStubber(Stubber):
    """A botocore ``Stubber`` that answers only ``operations`` (APIs moto lacks) and lets every other call on
    the same client through to moto. Stubbed calls are added to ``recorder`` (the stub answers before the
    recorder's hook would see them)."""

    def __init__(self, client: Any, *operations: str, recorder: CallRecorder | None = None) -> None:
        super().__init__(client)
        self.operations = set(operations)
        self.recorder = recorder

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if model.name not in self.operations:
            return None
        if self.recorder is not None:
            self.recorder.calls.append(f"{model.service_model.service_name}.{model.name}")
        return super()._get_response_handler(model, params, context, **kwargs)

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if model.name not in self.operations:
            return None
        return super()._assert_expected_params(model, params, context, **kwargs)


@pytest.fixture
def stub_only(calls: CallRecorder) -> Iterator[Callable[..., OnlyStubber]]:
    """``stub_only(client, "ListProvisionedConcurrencyConfigs")``: stub those operations only (activated);
    ``add_response`` takes the method name (``list_provisioned_concurrency_configs``)."""
    active: list[OnlyStubber] = []

    def make(client: Any, *operations: str) -> OnlyStubber:
        stubber = OnlyStubber(client, *operations, recorder=calls)
        stubber.activate()
        active.append(stubber)
        return stubber

    yield make
    for stubber in active:
        stubber.deactivate()


@contextlib.contextmanager
def capture_bot_log() -> Iterator[io.StringIO]:
    """Every line the bot's Powertools logger writes inside the block (level DEBUG), as text."""
    from chalicelib.core.log import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    if getattr(handler.stream, "closed", False):  # the logger was first made inside a test's capsys, now closed
        handler.stream = sys.stdout
    previous_stream, previous_level = handler.setStream(buffer), logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """Every line the bot's Powertools logger writes during the test (level DEBUG), as text."""
    with capture_bot_log() as buffer:
        yield buffer


@pytest.fixture
def local_slack() -> Iterator[Any]:
    """The local Slack API server (tests/world/slack_helpers.py has Slack's side of a click)."""
    from safetycatch.local.slack_local import LocalSlack
    from tests.world.slack_helpers import BOT_TOKEN, GROUP, GROUP_MEMBER

    with LocalSlack(token=BOT_TOKEN, groups={GROUP: [GROUP_MEMBER]}) as slack:
        yield slack


@pytest.fixture
def slack_bot(aws: SandboxAccount, make_runtime: Callable[..., Runtime], local_slack: Any,
              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The bot with Slack configured as deployed (the repo's policies with approvers), worker inline."""
    from chalicelib.bot import slack_routes
    from tests.world.slack_helpers import configure_slack, deployed_bot, policies_dir

    configure_slack(aws, monkeypatch, local_slack)
    yield deployed_bot(make_runtime, local_slack, policies_dir(tmp_path))
    slack_routes.wait_inline()
