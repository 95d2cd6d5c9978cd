"""Acting is opt-in and always undoable (issue 16.3), through the CLI on moto with the DynamoDB state table:
``replay`` changes nothing without ``--fix``; ``--fix`` without a table refuses unless ``--no-state``;
``undo FIX_ID`` puts back every fix kind and refuses over a later change; ``history`` reads the audit trail;
``pending`` shows the proposed change."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
import yaml

from chalicelib.bot.runtime import Runtime
from chalicelib.store.state import table_definition
from safetycatch.main import main
from tests.cli.conftest import TABLE
from tests.conftest import EVENTS, POLICIES
from tests.world.cli_helpers import one_line_error, run_json

UPLOADS = "example-uploads-123456789012"


def auto_policies(tmp_path: Path, *policy_ids: str) -> Path:
    """The repo's policies with these policies switched to mode auto (every fix applied by a sweep)."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    for policy_id in policy_ids:
        doc = yaml.safe_load((target / f"{policy_id}.yaml").read_text())
        (target / f"{policy_id}.yaml").write_text(yaml.safe_dump({**doc, "mode": "auto"}))
    return target


def estate(aws) -> dict[str, str]:
    """One function per fix kind that moto can show end to end."""
    arns = {"api": aws.function("api", timeout=30),
            "pay": aws.function("pay", tags={"critical": "true"}),
            "worker": aws.function("worker"),
            "watched": aws.function("watched", tags={"safetycatch:kill-switch": "true"}),
            "pdf": aws.function("pdf", memory=128)}
    aws.rest_api(arns["api"], path="api")
    arns["mapping"] = aws.sqs_mapping(arns["worker"], "worker-queue")
    aws.metric_history("pdf", "Duration", 2400, unit="Milliseconds")
    aws.metric_history("pdf", "Invocations", 40, unit="Count")
    writes = {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{UPLOADS}/*"}]}
    role = aws.execution_role("loop-role", {"write-uploads": writes})
    arns["loop"] = aws.client("lambda").create_function(
        FunctionName="loop", Runtime="python3.12", Handler="app.handler", Code={"ZipFile": aws._zip},
        Role=role)["FunctionArn"]
    aws.bucket_trigger(UPLOADS, arns["loop"])
    return arns


def state(aws) -> dict[str, object]:
    lam, cloudwatch = aws.client("lambda"), aws.client("cloudwatch")
    config = {n: lam.get_function(FunctionName=n)["Configuration"] for n in ("api", "pdf")}
    reserved = {n: lam.get_function_concurrency(FunctionName=n).get("ReservedConcurrentExecutions")
                for n in ("pay", "loop")}
    (mapping,) = lam.list_event_source_mappings(FunctionName="worker")["EventSourceMappings"]
    alarms = sorted(a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"])
    return {"api timeout": config["api"]["Timeout"], "pdf memory": config["pdf"]["MemorySize"], **reserved,
            "worker responses": mapping.get("FunctionResponseTypes") or [], "alarms": alarms}


def test_undo_puts_back_every_fix_kind_and_history_shows_it(aws, table, tmp_path, capsys):
    estate(aws)
    policies = auto_policies(tmp_path, "batch-partial-failure", "memory-cpu", "recursive-trigger")
    before = state(aws)
    data = run_json(capsys, "scan", "--fix", "--policies", str(policies), "--format", "json")
    applied = [(f["fix"]["action"], f["fix"]["id"]) for f in data["findings"] if f["outcome"] == "fixed"]
    # the function with a recursive-trigger finding also gets a (sensitive) runaway alarm: two alarm fixes
    assert sorted(action for action, _ in applied) == [
        "put-runaway-alarm", "put-runaway-alarm", "report-batch-item-failures", "set-memory",
        "set-reserved-concurrency", "set-timeout", "stop-recursive-loop"]
    assert state(aws) != before
    for action, fix_id in applied:
        assert main(["undo", fix_id, "--policies", str(policies)]) == 0, action
        assert capsys.readouterr().out.startswith(f"Undone {action} on ")
    assert state(aws) == before
    timeout_fix = dict(applied)["set-timeout"]
    err = one_line_error(capsys, "undo", timeout_fix, "--policies", str(policies))
    assert "Nothing to undo: this fix is undone by cli:arn:aws:sts::123456789012:user/moto" in err

    history = run_json(capsys, "history", "--format", "json", "--since", "1h")
    undone = [r for r in history["records"] if r["outcome"] == "undone"]
    assert sorted(r["fix_id"] for r in undone) == sorted(fix_id for _, fix_id in applied)
    fixed = {r["fix_id"] for r in history["records"] if r["outcome"] == "fixed"}
    assert fixed == {fix_id for _, fix_id in applied}
    only_api = run_json(capsys, "history", "--format", "json", "--function", "ap*")
    assert {r["function"].rsplit(":", 1)[-1] for r in only_api["records"]} == {"api"}
    assert [r["outcome"] for r in only_api["records"]] == ["undone", "fixed"]  # newest first
    assert main(["history", "--function", "api"]) == 0
    table_out = capsys.readouterr().out
    assert "2 audit records since" in table_out and "undone" in table_out and timeout_fix in table_out


def test_undo_refuses_over_a_later_change(aws, table, capsys):
    aws.rest_api(aws.function("api", timeout=30), path="api")
    data = run_json(capsys, "scan", "--fix", "--format", "json")
    (fix_id,) = [f["fix"]["id"] for f in data["findings"] if f["policy"] == "apigw-timeout"]
    aws.client("lambda").update_function_configuration(FunctionName="api", Timeout=20)  # someone's later change
    err = one_line_error(capsys, "undo", fix_id)
    assert "Not undone: the function was changed after the fix (Timeout is now 20, the fix set 25)" in err
    assert aws.client("lambda").get_function(FunctionName="api")["Configuration"]["Timeout"] == 20
    assert run_json(capsys, "history", "--format", "json")["records"][0]["outcome"] == "fixed"  # no undo audited


def test_undo_of_a_kill_restores_it(aws, table, capsys):
    arn = aws.function("thumbnailer")
    uuid = aws.sqs_mapping(arn, "jobs")
    killed = run_json(capsys, "kill", "thumbnailer", "--format", "json")
    assert killed["outcome"] == "fixed" and killed["fix"]["id"] == killed["fix_id"]
    lam = aws.client("lambda")
    assert lam.get_function_concurrency(FunctionName="thumbnailer")["ReservedConcurrentExecutions"] == 0
    restored = run_json(capsys, "undo", killed["fix"]["id"], "--format", "json")
    assert restored["status"] == "undone" and "thumbnailer restored" in restored["message"]
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="thumbnailer")
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"


def test_undo_of_a_provisioned_concurrency_fix(aws, table, tmp_path, capsys, monkeypatch, stub_only):
    """moto has no provisioned-concurrency API: List/PutProvisionedConcurrencyConfig are stubbed on each run's
    real Lambda client (those calls only); the rest (metrics, function, state table, Application Auto Scaling)
    is moto. The fix registers a scaler; its undo removes it and puts the prior value back."""
    arn = aws.function("quotes")
    lam = aws.client("lambda")
    lam.create_alias(FunctionName="quotes", Name="live", FunctionVersion=lam.publish_version(FunctionName="quotes")[
        "Version"])
    aws.metric_history("quotes", "ProvisionedConcurrencyUtilization", 0.1, qualifier="live")
    aws.metric_history("quotes", "ProvisionedConcurrentExecutions", 1, qualifier="live", peak=3, unit="Count")
    old = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    config = {"FunctionArn": f"{arn}:live", "RequestedProvisionedConcurrentExecutions": 20,
              "AllocatedProvisionedConcurrentExecutions": 20, "Status": "READY", "LastModified": old}
    puts: list[int] = []
    # the scan reads the configs (20) and registers a scaler; the undo reads them again (the scaler's drift
    # check, chalicelib/act/drift.py, reads the targets of the aliases with provisioned concurrency) and puts 20 back
    runs: list[tuple[int | str, ...]] = [(20,), (4, "put")]
    original = Runtime.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls, *args, **kwargs):
        runtime = original(cls, *args, **kwargs)
        stubber = stub_only(runtime.clients()("lambda"), "ListProvisionedConcurrencyConfigs",
                            "PutProvisionedConcurrencyConfig")
        for call in runs.pop(0):
            if isinstance(call, int):
                stubber.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [
                    {**config, "RequestedProvisionedConcurrentExecutions": call,
                     "AllocatedProvisionedConcurrentExecutions": call}]})
            else:
                stubber.add_response("put_provisioned_concurrency_config", {"Status": "IN_PROGRESS"})
        real_put = stubber.client.put_provisioned_concurrency_config

        def put(**params):
            puts.append(params["ProvisionedConcurrentExecutions"])
            return real_put(**params)

        monkeypatch.setattr(stubber.client, "put_provisioned_concurrency_config", put)
        return runtime

    monkeypatch.setattr(Runtime, "from_env", classmethod(from_env))
    policies = auto_policies(tmp_path, "provisioned-idle")
    data = run_json(capsys, "scan", "--fix", "--checks", "provisioned-idle", "--policies", str(policies),
                    "--format", "json")
    (finding,) = data["findings"]
    scaling = aws.client("application-autoscaling")
    assert finding["outcome"] == "fixed" and finding["fix"]["action"] == "scale-provisioned-concurrency"
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == ("function:quotes:live", 2, 4)
    assert main(["undo", finding["fix"]["id"], "--policies", str(policies)]) == 0
    assert "Undone scale-provisioned-concurrency on quotes" in capsys.readouterr().out
    assert scaling.describe_scalable_targets(ServiceNamespace="lambda")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="lambda")["ScalingPolicies"] == []
    assert puts == [20] and runs == []


def test_replay_changes_nothing_without_fix(aws, table, capsys, calls):
    aws.rest_api(aws.function("example-fn", timeout=30), path="orders")
    event = str(EVENTS / "lambda-UpdateFunctionConfiguration20150331v2.json")
    for argv in (["replay", event, "--format", "json"], ["replay", event, "--format", "json", "--dry-run"]):
        data = run_json(capsys, *argv)
        assert [f["outcome"] for f in data["events"][0]["findings"]] == ["dry-run"]
    lam = aws.client("lambda")
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30
    items = aws.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert items == []  # not even the bot's own state: a dry run keeps it in memory
    one_line_error(capsys, "replay", event, "--fix", "--dry-run")
    data = run_json(capsys, "replay", event, "--format", "json", "--fix")
    assert [f["outcome"] for f in data["events"][0]["findings"]] == ["fixed"]
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


@pytest.mark.parametrize("command", [["scan", "--fix"],
                                     ["replay", str(EVENTS / "lambda-UpdateFunctionConfiguration20150331v2.json"),
                                      "--fix"]])
def test_acting_without_a_state_table_refuses_unless_no_state(aws, capsys, command):
    aws.rest_api(aws.function("example-fn", timeout=30), path="orders")
    lam = aws.client("lambda")
    err = one_line_error(capsys, *command)
    assert f"{command[0]} --fix: set SAFETYCATCH_TABLE" in err and "--no-state acts anyway" in err
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30
    assert main([*command, "--no-state", "--format", "json"]) == 0
    capsys.readouterr()
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


def test_pending_shows_the_change_and_without_a_table_says_it_will_not_last(aws, capsys, monkeypatch):
    aws.sqs_mapping(aws.function("worker"), "worker-queue")
    data = run_json(capsys, "scan", "--fix", "--no-state", "--format", "json")
    (finding,) = data["findings"]
    assert finding["outcome"] == "pending-approval"
    assert "this approval will not outlive the run" in finding["detail"]
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    run_json(capsys, "scan", "--fix", "--format", "json")
    (approval,) = run_json(capsys, "pending", "--format", "json")["approvals"]
    assert approval["change"] == "FunctionResponseTypes = none -> FunctionResponseTypes = ReportBatchItemFailures"
    assert approval["fix"]["action"] == "report-batch-item-failures" and approval["severity"] == "medium"
    assert main(["pending"]) == 0
    assert "proposed: FunctionResponseTypes = none -> FunctionResponseTypes = ReportBatchItemFailures" in \
        capsys.readouterr().out


def test_history_since_reads_only_that_window(aws, table, capsys):
    arn = aws.function("api")
    old = datetime.now(timezone.utc) - timedelta(days=3)
    stamp = old.isoformat(timespec="milliseconds")
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=TABLE, Item={
        "pk": {"S": f"audit#{arn}"}, "sk": {"S": f"{stamp}#old"}, "kind": {"S": "audit"}, "at": {"S": stamp},
        "function": {"S": arn}, "policy": {"S": "apigw-timeout"}, "outcome": {"S": "fixed"},
        "gsi1pk": {"S": f"audits#{stamp[:10]}"}, "gsi1sk": {"S": f"{stamp}#{arn}"}})
    assert run_json(capsys, "history", "--since", "2d", "--format", "json")["records"] == []
    (record,) = run_json(capsys, "history", "--since", "4d", "--format", "json")["records"]
    assert record["at"] == stamp and record["outcome"] == "fixed"
    assert "expected a duration such as 30m" in one_line_error(capsys, "history", "--since", "yesterday")
    assert "keeps 90 days" in one_line_error(capsys, "history", "--since", "20w")


def test_history_and_undo_need_the_state_table(aws, capsys):
    assert "history: set SAFETYCATCH_TABLE" in one_line_error(capsys, "history")
    assert "undo: set SAFETYCATCH_TABLE" in one_line_error(capsys, "undo", "0" * 32)


def test_sample_events_name_no_plausible_real_function():
    for path in EVENTS.glob("*.json"):
        text = path.read_text()
        assert '"orders-api' not in text and ":function:orders-api" not in text, path.name
