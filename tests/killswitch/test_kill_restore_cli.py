"""``safetycatch kill FN`` / ``safetycatch restore FN`` end to end on moto, with the state table between runs."""

from __future__ import annotations

import json

import pytest

from safetycatch.main import main
from tests.conftest import POLICIES
from tests.killswitch.conftest import reserved as _reserved
from tests.world.runaway_support import policies_with


def test_kill_and_restore_across_runs(aws, table, capsys):
    arn = aws.function("thumbnailer")
    uuid = aws.sqs_mapping(arn, "jobs")
    aws.client("lambda").put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=12)
    assert main(["kill", "thumbnailer", "--reason", "bill spike", "--format", "json"]) == 0
    killed = json.loads(capsys.readouterr().out)
    assert killed["outcome"] == "fixed" and killed["fix"]["prior"]["ReservedConcurrentExecutions"] == 12
    assert _reserved(aws, "thumbnailer") == 0
    assert aws.client("lambda").get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    assert main(["kill", "thumbnailer"]) == 0
    assert "already killed" in capsys.readouterr().out
    assert main(["restore", arn]) == 0
    assert "reserved concurrency back to 12" in capsys.readouterr().out
    assert _reserved(aws, "thumbnailer") == 12
    assert aws.client("lambda").get_event_source_mapping(UUID=uuid)["State"] == "Enabled"


@pytest.mark.parametrize("argv, message", [
    (["kill", "ghost"], "kill: no function ghost in 123456789012 us-east-1"),
    (["kill", "not a function"], "is not a Lambda function name or ARN"),
    (["restore", "thumbnailer"], "restore: thumbnailer has no kill to restore"),
])
def test_bad_input_exits_2_with_one_line(aws, table, capsys, argv, message):
    aws.function("thumbnailer")
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("safetycatch: ")


def test_never_kill_exits_2(aws, table, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(policies_with(tmp_path, settings={"never_kill": ["thumb*"]})))
    aws.function("thumbnailer")
    assert main(["kill", "thumbnailer"]) == 2
    assert "not killed (exempt): it is in never_kill (thumb*)" in capsys.readouterr().err
    assert _reserved(aws, "thumbnailer") is None


def test_kill_needs_the_state_table(aws, capsys, monkeypatch):
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))
    aws.function("thumbnailer")
    assert main(["kill", "thumbnailer"]) == 2
    assert "set SAFETYCATCH_TABLE" in capsys.readouterr().err
    assert _reserved(aws, "thumbnailer") is None


def test_dry_run_kill_changes_nothing(aws, capsys, monkeypatch):
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(POLICIES))
    monkeypatch.setenv("SAFETYCATCH_MODE", "dry-run")
    aws.function("thumbnailer")
    assert main(["kill", "thumbnailer", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "dry-run"
    assert _reserved(aws, "thumbnailer") is None
