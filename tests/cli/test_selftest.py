"""``safetycatch selftest`` (issue 23.7): on the embedded default it makes a Timeout-29 function behind a REST API,
the local bot fixes it through the event the trail would deliver, and everything is deleted; with the bot off, or
with no event path at all, it names the missing stage, exits 1 and still cleans up - also on Ctrl-C. No test waits
on the wall clock: the run's clock is a fake that advances when the self-test sleeps."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.core.aws import Clients
from chalicelib.intake.events import CLOUDTRAIL_RULES, parse
from chalicelib.policy.settings import Settings
from safetycatch import doctor, selftest
from safetycatch.local.local_trail import LocalTrail
from safetycatch.local.sandbox import moto_server, patched_env
from safetycatch.main import main
from safetycatch.provision import init_state_table

TABLE = "selftest-state"
ACCOUNT = "123456789012"


class FakeClock:
    """Monotonic seconds that move only when the self-test sleeps (and what it slept, for the assertions)."""

    def __init__(self) -> None:
        self.t, self.slept = 1000.0, []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(seconds, 0.001)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setitem(selftest.CLOCK, "now", fake.now)
    monkeypatch.setitem(selftest.CLOCK, "sleep", fake.sleep)
    return fake


def _leftovers() -> dict[str, list[str]]:
    """Everything named safetycatch-selftest-* that still exists."""
    found = {"functions": [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]],
             "roles": [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]],
             "apis": [a["name"] for a in boto3.client("apigateway").get_rest_apis()["items"]]}
    return {k: [n for n in v if n.startswith(selftest.PREFIX)] for k, v in found.items()}


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The embedded default as the demo runs it: a moto server, a state table, the bot enforcing."""
    with moto_server() as endpoint, patched_env(SAFETYCATCH_TABLE=TABLE, SAFETYCATCH_MODE="enforce"):
        init_state_table(Clients("us-east-1"), TABLE)
        yield endpoint


def _run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["selftest", "--format", "json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _stages(report: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in report["stages"]}


@pytest.mark.slow
def test_embedded_default_passes_through_the_local_event_path_and_cleans_up(embedded, clock, capsys):
    code, report = _run(capsys=capsys)
    assert code == 0, report
    assert set(report) == {"passed", "seconds", "stages", "cleaned_up"}  # the contract, exactly
    assert report["passed"] is True and report["cleaned_up"] is True
    assert [s["id"] for s in report["stages"]] == ["trail", "rule", "create", "change", "event", "fix", "cleanup"]
    assert set(_stages(report).values()) == {"ok"}
    assert isinstance(report["seconds"], float) and report["seconds"] >= 0
    assert "apigw-timeout fixed" in next(s["detail"] for s in report["stages"] if s["id"] == "event")
    assert "29 -> 25 s" in next(s["detail"] for s in report["stages"] if s["id"] == "fix")
    assert _leftovers() == {"functions": [], "roles": [], "apis": []}
    # the fix is the bot's, stored for undo: its audit trail in the state table names the throwaway function
    history = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert any(i.get("policy", {}).get("S") == "apigw-timeout" and i.get("outcome", {}).get("S") == "fixed"
               and selftest.PREFIX in i["function"]["S"] for i in history if "function" in i)


@pytest.mark.slow
def test_bot_off_names_the_missing_stage_exits_1_and_still_cleans_up(embedded, clock, capsys, monkeypatch):
    monkeypatch.setenv("SAFETYCATCH_MODE", "off")
    code, report = _run("--timeout", "60", capsys=capsys)
    assert code == 1
    assert report["passed"] is False and report["seconds"] is None and report["cleaned_up"] is True
    stages = _stages(report)
    assert stages["event"] == "missing" and stages["fix"] == "missing" and stages["cleanup"] == "ok"
    event = next(s["detail"] for s in report["stages"] if s["id"] == "event")
    assert "safetycatch is off" in event
    assert "still 29 s after 60 s" in next(s["detail"] for s in report["stages"] if s["id"] == "fix")
    assert sum(clock.slept) >= 60 and clock.t - 1000 < 120  # waited the timeout out on the fake clock only
    assert _leftovers() == {"functions": [], "roles": [], "apis": []}


@pytest.mark.slow
def test_table_output_names_the_missing_stage(embedded, clock, capsys, monkeypatch):
    monkeypatch.setenv("SAFETYCATCH_MODE", "off")
    assert main(["selftest", "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert "MISSING" in out and "event" in out and "selftest failed: event missing; cleaned up: yes" in out


def test_usage_errors_exit_2_and_make_nothing(capsys):
    with mock_aws():
        assert main(["selftest", "--timeout", "0"]) == 2
        assert main(["selftest", "--stage", "nosuchstage"]) == 2
        assert _leftovers() == {"functions": [], "roles": [], "apis": []}
    err = capsys.readouterr().err
    assert "--timeout 0 is not between 1 and 3600 seconds" in err and "no stage 'nosuchstage'" in err
    assert "Traceback" not in err


# -- on AWS (no local trail): what the deployed path is missing comes from doctor's checks -----------------------


@pytest.fixture
def account() -> Any:
    with mock_aws():
        init_state_table(Clients("us-east-1"), TABLE)
        yield boto3.session.Session(region_name="us-east-1")


def _target() -> doctor.Target:
    return doctor.Target(stage="dev", table=TABLE, mode_parameter="/safetycatch/dev/mode")


def test_no_trail_and_no_rule_fail_the_event_stage_with_doctors_words(account, clock):
    test = selftest.SelfTest(account, _target(), timeout=30)
    report = test.run()
    stages = _stages(report.to_json())
    assert stages["trail"] == "missing" and stages["rule"] == "missing"
    assert stages["event"] == "missing" and stages["fix"] == "missing" and report.passed is False
    event = next(s.detail for s in report.stages if s.id == "event")
    assert "doctor: cloudtrail missing" in event and "doctor: rule:on_config_change missing" in event
    assert "doctor: mode-parameter missing" in event and "state-table" not in event  # the table is there
    assert report.cleaned_up and _leftovers() == {"functions": [], "roles": [], "apis": []}


def test_a_bot_that_answers_between_polls_is_timed_from_the_change(account, clock):
    """The deployed bot's answer arrives while the self-test waits: the seconds are change -> fix on its clock."""
    trail = LocalTrail(ACCOUNT, "us-east-1", "arn:aws:sts::123456789012:assumed-role/ops/selftest")

    class LateBot:
        """Delivers the trail's events only after 42 s on the clock (CloudTrail's delay)."""

        def __init__(self) -> None:
            from chalicelib.bot.runtime import Runtime
            with patched_env(SAFETYCATCH_TABLE=TABLE, SAFETYCATCH_MODE="enforce"):
                self.runtime = Runtime.from_env(region="us-east-1")
            self.start = clock.now()

        def __call__(self) -> None:
            if clock.now() - self.start >= 42:
                trail.deliver(self.runtime)

    late = LateBot()
    test = selftest.SelfTest(account, _target(), timeout=300, poll=5, trail=trail, bot=late.runtime)
    test.trail = type("Delayed", (), {"attach": trail.attach, "deliver": lambda _self, _rt: late(),
                                      "delivered": trail.delivered})()
    report = test.run()
    assert report.passed and 40 <= (report.seconds or 0) <= 50 and report.cleaned_up


def test_ctrl_c_while_waiting_still_deletes_everything(account, clock):
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    test = selftest.SelfTest(account, _target(), timeout=300, sleep=interrupted)
    with pytest.raises(KeyboardInterrupt):
        test.run()
    stages = _stages(test.report.to_json())
    assert stages["interrupted"] == "missing" and stages["cleanup"] == "ok" and test.report.cleaned_up
    assert _leftovers() == {"functions": [], "roles": [], "apis": []}


def test_interrupted_between_create_and_change_deletes_by_name(account, clock, monkeypatch):
    def stop() -> selftest.Stage:
        raise KeyboardInterrupt

    test = selftest.SelfTest(account, _target(), timeout=30)
    monkeypatch.setattr(test, "_change", stop)
    with pytest.raises(KeyboardInterrupt):
        test.run()
    assert test.report.cleaned_up and _leftovers() == {"functions": [], "roles": [], "apis": []}


def test_a_refused_create_is_the_missing_stage_and_what_was_made_is_deleted(account, clock, monkeypatch):
    test = selftest.SelfTest(account, _target(), timeout=30)
    apigw = test.client("apigateway")

    def refused(**_: Any) -> None:
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutIntegration")

    monkeypatch.setattr(apigw, "put_integration", refused)
    report = test.run()
    create = next(s for s in report.stages if s.id == "create")
    assert create.status == "missing" and "PutIntegration refused: AccessDeniedException" in create.detail
    assert [s.id for s in report.stages][-1] == "cleanup" and report.cleaned_up and not report.passed
    assert _leftovers() == {"functions": [], "roles": [], "apis": []}


# -- the local trail: the events CloudTrail would deliver ------------------------------------------------------


def test_local_trail_records_calls_as_cloudtrail_does(account):
    from moto.events.models import EventPattern

    trail = LocalTrail(ACCOUNT, "us-east-1", "arn:aws:sts::123456789012:assumed-role/ops/alice")
    test = selftest.SelfTest(account, _target(), trail=trail)
    test._create()
    lam = test.client("lambda")
    lam.update_function_configuration(FunctionName=test.made.name, Timeout=29)
    try:
        lam.update_function_configuration(FunctionName="no-such-function", Timeout=29)
    except lam.exceptions.ResourceNotFoundException:
        pass
    test._cleanup()
    names = [e["detail"]["eventName"] for e in trail.pending]
    assert "CreateFunction20150331" in names and "PutIntegration" in names and "AddPermission20150331v2" in names
    update = next(e for e in trail.pending if e["detail"]["eventName"] == "UpdateFunctionConfiguration20150331v2")
    assert update["detail"]["requestParameters"] == {"functionName": test.made.name, "timeout": 29}
    assert update["detail"]["responseElements"]["functionArn"] == test.made.function_arn
    change = parse(update, Settings())
    assert change.function.name == test.made.name and change.actor == "arn:aws:iam::123456789012:role/ops"
    failed = [e for e in trail.pending if e["detail"].get("errorCode")]
    assert failed and failed[0]["detail"]["requestParameters"] is None  # CloudTrail's shape of a failed call
    put = next(e for e in trail.pending if e["detail"]["eventName"] == "PutIntegration")
    assert put["detail"]["requestParameters"]["putIntegrationInput"]["uri"].endswith(
        f"{test.made.function_arn}/invocations")
    assert parse(put, Settings()).function.name == test.made.name
    config = EventPattern.load(json.dumps(CLOUDTRAIL_RULES["on_config_change"]))
    matched = {e["detail"]["eventName"] for e in trail.pending if config.matches_event(e)}
    assert "UpdateFunctionConfiguration20150331v2" in matched and "PutIntegration" in matched
    assert not any(n.startswith(("GetFunction", "CreateRole", "Query")) for n in matched)  # reads, IAM: no rule
    assert not any(e["detail"].get("errorCode") for e in trail.pending if config.matches_event(e))
