"""The conventions of Custodian and Prowler users (issue 16.6): --checks / --exclude-checks, --function, --profile,
--version, -v anywhere, explain --format json, the mutelist, replay of many files and directories, a closed pipe."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.checks import REGISTRY
from chalicelib.store.state import MemoryTable, StateStore
from safetycatch.main import main
from tests.conftest import EVENTS, POLICIES, ROOT
from tests.world.cli_helpers import one_line_error, run, run_json


@pytest.fixture
def estate(aws):
    aws.rest_api(aws.function("orders-front", timeout=30), path="orders")
    aws.rest_api(aws.function("billing-front", timeout=30), path="billing")
    aws.sqs_mapping(aws.function("orders-worker"), "orders-queue")
    return aws


def policies_copy(tmp_path: Path, **extra: str) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    for name, text in extra.items():
        (target / name).write_text(text)
    return target


def findings(data):
    return sorted((f["function_name"], f["policy"]) for f in data["findings"])


def test_checks_and_exclude_checks(estate, capsys):
    only = run_json(capsys, "scan", "--checks", "batch-partial-failure", "--format", "json")
    assert findings(only) == [("orders-worker", "batch-partial-failure")]
    rest = run_json(capsys, "scan", "--exclude-checks", "batch-partial-failure", "--format", "json")
    assert findings(rest) == [("billing-front", "apigw-timeout"), ("orders-front", "apigw-timeout")]
    assert "--checks: no-such-check is not a policy id" in one_line_error(capsys, "scan", "--checks", "no-such-check")
    err = one_line_error(capsys, "scan", "--checks", "apigw-timeout", "--exclude-checks", "apigw-timeout")
    assert "leave no policy to run" in err


def test_checks_refuses_a_policy_the_directory_does_not_enable(estate, tmp_path, capsys):
    directory = tmp_path / "only-timeouts"
    directory.mkdir()
    (directory / "apigw-timeout.yaml").write_text("mode: auto\n")
    err = one_line_error(capsys, "scan", "--policies", str(directory), "--checks", "memory-cpu")
    assert "--checks: memory-cpu not enabled in the policies" in err


def test_function_name_or_glob(estate, capsys):
    data = run_json(capsys, "scan", "--function", "orders-*", "--format", "json")
    assert findings(data) == [("orders-front", "apigw-timeout"), ("orders-worker", "batch-partial-failure")]
    assert data["functions_scanned"] == 2
    by_arn = run_json(capsys, "scan", "--function", "arn:aws:lambda:*:function:billing-front", "--format", "json")
    assert findings(by_arn) == [("billing-front", "apigw-timeout")] and by_arn["functions_scanned"] == 1


def test_profile_selects_the_credentials_and_region(estate, tmp_path, capsys, monkeypatch):
    (tmp_path / "config").write_text("[profile audit]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text("[audit]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for key in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(key)
    data = run_json(capsys, "scan", "--profile", "audit", "--format", "json")
    assert (data["region"], data["functions_scanned"]) == ("eu-west-1", 0)  # the estate is in us-east-1
    err = one_line_error(capsys, "scan", "--profile", "nobody")
    assert "AWS: The config profile (nobody) could not be found" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == "safetycatch 0.1.0"


@pytest.mark.parametrize("argv", [["-v", "explain", "apigw-timeout"], ["explain", "-v", "apigw-timeout"],
                                  ["explain", "apigw-timeout", "--verbose"]])
def test_verbose_anywhere(capsys, argv, monkeypatch):
    from chalicelib.core.log import logger

    monkeypatch.setattr(logger, "setLevel", lambda level: pytest.fail("-v was ignored"))
    assert main(argv) == 0


def test_explain_json_and_nothing_cut_when_piped(capsys):
    data = run_json(capsys, "explain", "--format", "json")
    assert {p["id"] for p in data["policies"]} == set(REGISTRY)
    assert all({"params", "rules", "fixes", "triggers", "reads", "doc"} <= set(p) for p in data["policies"])
    code, out, _ = run(capsys, "explain", "recursive-trigger")  # stdout is a pipe here, not a terminal
    (policy,) = run_json(capsys, "explain", "recursive-trigger", "--format", "json")["policies"]
    lines = out.splitlines()
    assert policy["doc"][0] in lines  # the whole paragraph on one line, however long
    assert any(len(line) > 200 for line in lines) and "│" not in out and "━" not in out


def test_mutelist_mutes_until_it_expires_and_lint_validates_it(estate, tmp_path, capsys):
    mutes = ("mutes:\n"
             "  - {policy: apigw-timeout, function: 'orders-*', reason: 'rewrite in Q3 (JIRA-42)',\n"
             "     expires: 2999-12-31}\n"
             "  - {policy: batch-partial-failure, account: '123456789012', reason: 'old', expires: 2020-01-31}\n")
    directory = policies_copy(tmp_path, **{"mutelist.yaml": mutes})
    code, out, _ = run(capsys, "lint", str(directory))
    assert code == 0 and "and 2 mutes" in out
    assert "a mute of batch-partial-failure / * expired on 2020-01-31: its findings are back" in out
    code, out, _ = run(capsys, "scan", "--policies", str(directory), "--fix", "--no-state", "--format", "json",
                       "--fail-on", "high")
    data = json.loads(out)
    assert code == 1  # billing-front's high finding; orders-front's is muted and does not count
    assert run(capsys, "scan", "--policies", str(directory), "--function", "orders-front", "--fail-on", "high")[0] == 0
    outcomes = {f["function_name"]: (f["outcome"], f.get("detail", "")) for f in data["findings"]}
    assert outcomes["orders-front"] == ("muted", "muted until 2999-12-31: rewrite in Q3 (JIRA-42)")
    assert outcomes["billing-front"][0] == "fixed"
    assert outcomes["orders-worker"][0] == "pending-approval"
    front = {f["function_name"]: f for f in data["findings"]}["orders-front"]
    assert front["fix"] is not None and "id" not in front["fix"]
    assert estate.client("lambda").get_function(FunctionName="orders-front")["Configuration"]["Timeout"] == 30


def test_a_muted_finding_comes_back_the_day_after_it_expires(estate, tmp_path, make_runtime):
    directory = policies_copy(tmp_path, **{"mutelist.yaml": (
        "mutes:\n  - {policy: 'apigw-*', function: 'orders-front', reason: 'accepted', expires: 2030-06-30}\n")})
    runtime = make_runtime(policies=directory)
    outcomes = {}
    for day in ("2030-06-30T23:59:59", "2030-07-01T00:00:00"):
        moment = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp()
        runtime._store = StateStore(MemoryTable(), clock=lambda moment=moment: moment)
        report = runtime.engine("123456789012", "us-east-1").sweep(act=False)
        outcomes[day] = {d.finding.function_arn.rsplit(":", 1)[-1]: d.outcome for d in report.decisions
                         if d.finding.policy == "apigw-timeout"}
    assert outcomes["2030-06-30T23:59:59"] == {"orders-front": "muted", "billing-front": "reported"}
    assert outcomes["2030-07-01T00:00:00"] == {"orders-front": "reported", "billing-front": "reported"}


def test_lint_reports_every_mutelist_problem(tmp_path, capsys):
    mutes = ("mutes:\n"
             "  - {policy: apigw-timeout, expires: 2030-01-01}\n"
             "  - {function: x, reason: y, expires: next week}\n"
             "  - {reason: everything, expires: 2030-01-01}\n"
             "  - {function: x, reason: y, expires: 2030-01-01, until: z}\n")
    directory = policies_copy(tmp_path, **{"mutelist.yaml": mutes})
    code, _, err = run(capsys, "lint", str(directory))
    assert code == 2
    assert err.splitlines() == [
        "safetycatch: mutelist.yaml: mutes[0].reason: required: why this finding is accepted (1-300 characters)",
        "safetycatch: mutelist.yaml: mutes[1].expires: required: the last day the mute holds, a date (YYYY-MM-DD)",
        "safetycatch: mutelist.yaml: mutes[2]: mutes every finding; name a policy, account, region or function",
        "safetycatch: mutelist.yaml: mutes[3].until: unknown key (known: policy, account, region, function, reason, "
        "expires)",
        "safetycatch: lint: 4 problems in 1 file",
    ]


def test_replay_takes_several_files_and_directories(aws, tmp_path, capsys):
    flat, nested = tmp_path / "events", tmp_path / "trail" / "2025" / "06" / "10"
    for directory in (flat, nested):
        directory.mkdir(parents=True)
    for name in ("lambda-TagResource20170331v2.json", "lambda-CreateFunction20150331.json"):
        shutil.copy(EVENTS / name, flat / name)
    shutil.copy(EVENTS / "lambda-PutFunctionConcurrency20171031.json", nested / "a.json")
    (nested / "notes.txt").write_text("not an event")  # not .json: not read
    data = run_json(capsys, "replay", str(flat), str(EVENTS / "lambda-UpdateFunctionCode20150331v2.json"),
                    str(tmp_path / "trail"), "--format", "json")
    assert [e["event_name"] for e in data["events"]] == ["CreateFunction", "TagResource", "UpdateFunctionCode",
                                                         "PutFunctionConcurrency"]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("not an event")
    err = one_line_error(capsys, "replay", str(EVENTS), str(notes))
    assert f"replay: {notes}: no .json or .json.gz files in this directory" in err  # checked before any is run


def test_a_closed_pipe_ends_quietly(tmp_path):
    """The reader of stdout is gone before the CLI writes (``safetycatch ... | head`` once head has exited)."""
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    done = subprocess.run([sys.executable, "-m", "safetycatch.main", "explain", "--format", "json"], stdout=write,
                          stderr=subprocess.PIPE, cwd=ROOT, env=env, timeout=120, check=False)
    os.close(write)
    assert done.stderr.decode() == "" and done.returncode == 141  # 128 + SIGPIPE; 1 is a failing finding
