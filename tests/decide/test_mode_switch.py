"""The operator's switch: the deployed bot reads SAFETYCATCH_MODE overrides from SSM (cached briefly) and
fails closed on a bad value."""

from __future__ import annotations

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from chalicelib.bot import handlers
from chalicelib.bot.runtime import Runtime, mode_override
from safetycatch.provision import init_state_table
from tests.conftest import POLICIES

PARAMETER = "/safetycatch/dev/mode"


@pytest.fixture
def deployed(aws, calls, monkeypatch):
    """The deployed wiring: settings from the environment, the runtime built by the handlers themselves."""
    monkeypatch.setenv("SAFETYCATCH_MODE", "enforce")
    monkeypatch.setenv("SAFETYCATCH_MODE_PARAMETER", PARAMETER)
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))

    def build(table: str | None = None) -> Runtime:
        if table:
            monkeypatch.setenv("SAFETYCATCH_TABLE", table)
            init_state_table(_clients(), table)
        runtime = Runtime.from_env(str(POLICIES), region="us-east-1")
        runtime.account = "123456789012"
        calls.watch(runtime.session)
        handlers.reset_runtime(runtime)
        return runtime

    return build


def _clients():
    from chalicelib.core.aws import Clients
    return Clients("us-east-1")


def _set_mode(value: str) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=PARAMETER, Value=value, Type="String",
                                                                Overwrite=True)


def _orders_api(aws, timeout=30):
    arn = aws.function("example-fn", timeout=timeout)
    aws.rest_api(arn, path="orders")


def test_dry_run_in_ssm_overrides_enforce_in_the_environment(aws, deployed, calls, event):
    _orders_api(aws)
    _set_mode("dry-run")
    deployed(table="safetycatch-dev")
    calls.clear()
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert [f["outcome"] for f in report["findings"]] == ["dry-run"]
    assert calls.writes == [], "dry-run from SSM: no fix, no audit, no idempotency record"
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_off_in_ssm_skips_every_event(aws, deployed, event):
    _orders_api(aws)
    _set_mode("off")
    deployed()
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert report["skipped"].startswith("safetycatch is off")
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_invalid_value_fails_closed_and_says_so(aws, deployed, event, caplog):
    _orders_api(aws)
    _set_mode("yolo")
    runtime = deployed()
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert runtime.mode == "off" and report["skipped"].startswith("safetycatch is off")
    assert any(r.levelname == "ERROR" and "INVALID safetycatch mode" in r.getMessage() for r in caplog.records)
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_a_configured_parameter_that_is_missing_means_off_never_enforce(aws, deployed, event):
    """Attack: delete the mode parameter (ssm:DeleteParameter) so the bot falls back to SAFETYCATCH_MODE=enforce."""
    _orders_api(aws)
    runtime = deployed()
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert runtime.mode == "off" and report["skipped"].startswith("safetycatch is off")
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_deleting_the_parameter_keeps_the_last_value_then_fails_closed(aws, deployed, event):
    """The operator set dry-run; someone deletes the parameter: the last value read holds for the grace period,
    then the bot is off - it never falls back to enforce."""
    from chalicelib.bot.runtime import MODE_LAST_KNOWN_SECONDS

    _orders_api(aws)
    _set_mode("dry-run")
    runtime = deployed()
    now = [1_000_000.0]
    runtime.clock = lambda: now[0]
    assert handlers.current_runtime().mode == "dry-run"
    boto3.client("ssm", region_name="us-east-1").delete_parameter(Name=PARAMETER)
    runtime._mode_provider.clear_cache()  # what max_age expiry does
    now[0] += MODE_LAST_KNOWN_SECONDS - 1
    assert handlers.current_runtime().mode == "dry-run", "the last value read is kept for a while"
    runtime._mode_provider.clear_cache()
    now[0] += 2
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert runtime.mode == "off" and report["skipped"].startswith("safetycatch is off")
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_the_parameter_is_cached_between_invocations(aws, deployed, calls, monkeypatch):
    from chalicelib.bot import runtime as runtime_module

    assert runtime_module.MODE_MAX_AGE_SECONDS == 60, "an operator's switch takes effect within a minute"
    monkeypatch.setattr(runtime_module, "MODE_MAX_AGE_SECONDS", 10**9)  # no expiry mid-test on a slow machine
    _set_mode("dry-run")
    runtime = deployed()
    for _ in range(5):
        handlers.current_runtime()
    assert calls.calls.count("ssm.GetParameter") == 1
    _set_mode("enforce")
    assert handlers.current_runtime().mode == "dry-run", "within max_age the cached value holds"
    runtime._mode_provider.clear_cache()  # what max_age expiry does
    assert handlers.current_runtime().mode == "enforce"


def test_switching_back_to_enforce_restores_state_writes(aws, deployed, calls, event):
    _orders_api(aws)
    _set_mode("dry-run")
    runtime = deployed(table="safetycatch-dev")
    handlers.current_runtime()
    assert runtime.writes_state is False
    _set_mode("enforce")
    runtime._mode_provider.clear_cache()
    report = handlers.handle_event(event("lambda-UpdateFunctionConfiguration20150331v2"))
    assert [f["outcome"] for f in report["findings"]] == ["fixed"]
    assert runtime.writes_state and runtime.store.audit_trail(report["function"]), "audited in DynamoDB again"


class _Provider:
    """Powertools provider double for the failure paths moto cannot produce (AccessDenied on SSM)."""

    def __init__(self, error: str) -> None:
        self.error = error

    def get(self, name: str, max_age: int) -> str:
        try:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "GetParameter")
        except ClientError as exc:
            raise GetParameterError(str(exc)) from exc


def test_unreadable_parameter_keeps_the_last_value_or_fails_closed():
    from chalicelib.bot.runtime import MODE_LAST_KNOWN_SECONDS

    for code in ("AccessDeniedException", "ParameterNotFound", "ThrottlingException"):
        assert mode_override(PARAMETER, _Provider(code)) == "off"
        assert mode_override(PARAMETER, _Provider(code), last_known=("dry-run", 100.0), now=101.0) == "dry-run"
        assert mode_override(PARAMETER, _Provider(code), last_known=("enforce", 100.0),
                             now=100.0 + MODE_LAST_KNOWN_SECONDS + 1) == "off"


def test_cli_runs_without_a_parameter_never_call_ssm(aws, make_runtime, calls):
    runtime = make_runtime(mode="dry-run")
    assert runtime.refresh_mode() == "dry-run"
    assert not [c for c in calls.calls if c.startswith("ssm.")]
