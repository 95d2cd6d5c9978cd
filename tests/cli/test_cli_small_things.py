"""Item 6 of issue 25: small things a user hits at once."""

from __future__ import annotations

import io
import shutil
from datetime import datetime, timezone

import boto3
import pytest

from safetycatch.main import main
from tests.cli.conftest import TABLE
from tests.conftest import EVENTS, POLICIES
from tests.world.cli_helpers import run, run_json


def test_lint_honours_safetycatch_policies_and_works_outside_the_checkout(capsys, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    shutil.copytree(POLICIES, mine)
    (mine / "apigw-timeout.yaml").write_text("mode: sometimes\n")
    monkeypatch.chdir(tmp_path)  # no policies/ here
    code, out, _ = run(capsys, "lint")
    assert code == 0 and "OK" in out, "outside the checkout: the policies shipped with safetycatch"
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(mine))
    code, _, err = run(capsys, "lint")
    assert code == 2 and "apigw-timeout.yaml" in err and "mode" in err


def test_history_prints_brackets_in_a_role_path_as_they_are(aws, table, capsys):
    arn = aws.function("api")
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    context = "role arn:aws:iam::123456789012:role/[ops]/deploy[/bold] via [link=x]"
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=TABLE, Item={
        "pk": {"S": f"audit#{arn}"}, "sk": {"S": f"{stamp}#a"}, "kind": {"S": "audit"}, "at": {"S": stamp},
        "function": {"S": arn}, "policy": {"S": "apigw-timeout"}, "outcome": {"S": "fixed"},
        "context": {"S": context}, "gsi1pk": {"S": f"audits#{stamp[:10]}"}, "gsi1sk": {"S": f"{stamp}#{arn}"}})
    code, out, err = run(capsys, "history")
    assert code == 0, err
    assert context in out


def test_scan_fix_in_table_form_says_how_to_undo_each_fix(aws, table, capsys, tmp_path):
    arn = aws.function("api", timeout=30)
    aws.rest_api(arn, path="api")
    code, out, err = run(capsys, "scan", "--fix")
    assert code == 0, err
    (fix_id,) = [line.split()[-1] for line in out.splitlines() if "undo: safetycatch undo" in line]
    assert main(["undo", fix_id]) == 0
    assert aws.client("lambda").get_function(FunctionName="api")["Configuration"]["Timeout"] == 30


def test_replay_fix_in_table_form_says_how_to_undo(aws, table, capsys):
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    code, out, err = run(capsys, "replay", str(EVENTS / "lambda-UpdateFunctionConfiguration20150331v2.json"), "--fix")
    assert code == 0, err
    assert "undo: safetycatch undo " in out


def test_an_api_is_named_the_same_with_and_without_function(aws, capsys):
    arn = aws.function("api", timeout=30)
    aws.rest_api(arn, path="orders", name="orders-public")
    everything = run_json(capsys, "scan", "--format", "json")
    one = run_json(capsys, "scan", "--format", "json", "--function", "api")
    message = {f["policy"]: f["message"] for f in everything["findings"]}["apigw-timeout"]
    assert "REST API orders-public (GET /orders)" in message
    assert {f["policy"]: f["message"] for f in one["findings"]}["apigw-timeout"] == message


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_is_never_the_code_of_a_failing_finding(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert main(["explain", "--format", "json"]) in (0, 141)


@pytest.mark.parametrize("argv", [["scan", "--bogus"], ["check"], ["nope"], ["scan", "--format", "xml"]])
def test_usage_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith("safetycatch: "), err

