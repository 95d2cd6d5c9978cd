"""The operator CLI against moto: contract JSON, exit codes, one-line errors, nothing changed without --fix."""

from __future__ import annotations

import gzip
import json

import pytest

from safetycatch.main import main

ORDERS = "arn:aws:lambda:us-east-1:123456789012:function:example-fn"


@pytest.fixture
def estate(aws):
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    aws.sqs_mapping(aws.function("orders-worker"), "orders-queue")
    aws.function("healthy", timeout=3)
    return aws


def run_json(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def test_scan_json_contract_and_changes_nothing(estate, capsys):
    code, data, _ = run_json(capsys, "scan", "--format", "json")
    assert code == 0
    assert {"account", "region", "functions_scanned", "findings", "errors"} <= set(data)
    assert (data["account"], data["region"], data["functions_scanned"]) == ("123456789012", "us-east-1", 3)
    by_policy = {f["policy"]: f for f in data["findings"]}
    assert set(by_policy) == {"apigw-timeout", "batch-partial-failure"}
    timeout = by_policy["apigw-timeout"]
    assert timeout["function"] == ORDERS and timeout["severity"] == "high" and timeout["mode"] == "auto"
    assert timeout["outcome"] == "reported" and timeout["fix"]["action"] == "set-timeout"
    assert timeout["fix"]["params"] == {"Timeout": 25} and timeout["message"]
    assert estate.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


def test_scan_fix_acts_like_the_bot(estate, capsys):
    code, data, _ = run_json(capsys, "scan", "--fix", "--no-state", "--format", "json")
    outcomes = {f["policy"]: f["outcome"] for f in data["findings"]}
    assert outcomes == {"apigw-timeout": "fixed", "batch-partial-failure": "pending-approval"}
    assert estate.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


def test_fail_on_sets_exit_code(estate, capsys):
    assert main(["scan", "--format", "json", "--fail-on", "high"]) == 1
    assert main(["scan", "--format", "json", "--fail-on", "critical"]) == 0
    capsys.readouterr()


def test_scan_table_is_readable(estate, capsys):
    assert main(["scan"]) == 0
    out = capsys.readouterr().out
    assert "3 functions, 2 findings" in out and "example-fn" in out and "set-timeout" in out


def test_replay_json_contract_for_a_cloudtrail_log_file(estate, event, tmp_path, capsys):
    records = [event("lambda-UpdateFunctionConfiguration20150331v2")["detail"],
               event("lambda-UpdateFunctionConfiguration20150331v2-AccessDenied")["detail"]]
    path = tmp_path / "123456789012_CloudTrail_us-east-1_20250610T1420Z_x.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    code, data, _ = run_json(capsys, "replay", str(path), "--format", "json", "--fix", "--no-state")
    assert code == 0
    first, second = data["events"]
    assert set(first) >= {"event_id", "event_name", "function", "skipped", "findings"}
    assert first["function"] == ORDERS and first["skipped"] is None
    assert [f["outcome"] for f in first["findings"]] == ["fixed"]
    assert second["skipped"] == "the call failed (AccessDenied)" and second["function"] is None


def test_replay_dry_run_changes_nothing(estate, event, tmp_path, capsys):
    path = tmp_path / "events.json"
    path.write_text(json.dumps([event("lambda-UpdateFunctionConfiguration20150331v2")]))
    code, data, _ = run_json(capsys, "replay", str(path), "--format", "json", "--dry-run")
    assert [f["outcome"] for f in data["events"][0]["findings"]] == ["dry-run"]
    assert estate.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30


@pytest.mark.parametrize("argv, content, message", [
    (["replay", "{path}"], "{not json", "not JSON (line 1"),
    (["replay", "{path}"], '"a string"', "expected an event object"),
    (["replay", "/no/such/file.json"], None, "no such file"),
    (["scan", "--policies", "/no/such/dir"], None, "not a directory"),
    (["explain", "no-such-policy"], None, "no policy 'no-such-policy'"),
    (["init"], None, "set SAFETYCATCH_TABLE"),
])
def test_bad_input_is_one_line_exit_2(aws, tmp_path, capsys, argv, content, message):
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    assert main([a.replace("{path}", str(path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_mode_setting_is_one_line(aws, monkeypatch, capsys):
    monkeypatch.setenv("SAFETYCATCH_MODE", "yolo")
    assert main(["scan"]) == 2
    assert "SAFETYCATCH_MODE: expected one of enforce, dry-run, off" in capsys.readouterr().err


def test_explain_comes_from_the_registry(capsys):
    assert main(["explain"]) == 0
    listing = capsys.readouterr().out
    assert "apigw-timeout" in listing and "reserved-concurrency" in listing
    assert main(["explain", "reserved-concurrency"]) == 0
    detail = capsys.readouterr().out
    assert "headroom" in detail and "lambda:PutFunctionConcurrency" in detail


def test_init_then_pending_with_a_state_table(estate, monkeypatch, capsys):
    monkeypatch.setenv("SAFETYCATCH_TABLE", "safetycatch-state")
    assert main(["init"]) == 0 and "created" in capsys.readouterr().out
    assert main(["init"]) == 0 and "already there" in capsys.readouterr().out
    main(["scan", "--fix", "--format", "json"])
    capsys.readouterr()
    code, data, _ = run_json(capsys, "pending", "--format", "json")
    (approval,) = data["approvals"]
    assert set(approval) >= {"id", "function", "policy", "status", "expires_at"}
    assert approval["policy"] == "batch-partial-failure" and approval["status"] == "PENDING"
    assert approval["function"].endswith(":function:orders-worker")
