"""The Security Hub sink on moto's securityhub: ASFF imports with ids stable per function and policy (re-imports
update), fixed and vanished findings resolved, dry-run imports nothing; ``scan --format ocsf`` for other SIEMs."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from chalicelib.core.aws import Clients
from chalicelib.exports.export import finding_id
from chalicelib.exports.securityhub import SecurityHubSink, SecurityHubUnavailable
from safetycatch.build import iam
from safetycatch.main import main

ACCOUNT = "123456789012"
SECRET_ENV = {"Variables": {"SMTP_PASSWORD": "Tr0ub4dor-mailer-pw-61", "LOG_LEVEL": "INFO"}}


@pytest.fixture
def hub(aws, monkeypatch, make_runtime):
    monkeypatch.setenv("SAFETYCATCH_SECURITYHUB", "on")
    client = aws.client("securityhub")
    client.enable_security_hub()
    aws.function("mailer", Environment=SECRET_ENV)
    aws.rest_api(aws.function("orders-api", timeout=30), path="orders")
    return client


def findings(client) -> dict[str, dict]:
    return {f["Id"]: f for f in client.get_findings()["Findings"]}


def sweep(runtime, clock: float):
    engine = runtime.engine(ACCOUNT, "us-east-1")
    assert engine.sink is not None
    engine.sink.clock = lambda: clock
    return engine.sweep(act=True).to_json()


def test_findings_are_imported_as_asff_and_reimports_update_them(hub, make_runtime):
    runtime = make_runtime()
    report = sweep(runtime, 1_750_000_000)
    assert [e for e in report["errors"] if not e.startswith("not notified: Slack is not configured")] == []
    mailer = finding_id("env-secrets", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mailer")
    orders = finding_id("apigw-timeout", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders-api")
    found = findings(hub)
    assert set(found) == {mailer, orders}
    secret = found[mailer]
    assert secret["ProductArn"] == f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert secret["RecordState"] == "ACTIVE" and secret["Compliance"]["Status"] == "FAILED"
    assert secret["Severity"]["Label"] == "HIGH" and secret["Resources"][0]["Type"] == "AwsLambdaFunction"
    assert secret["GeneratorId"] == "safetycatch/env-secrets" and secret["AwsAccountId"] == ACCOUNT
    assert "Tr0ub4dor" not in json.dumps(secret), "the secret's value never leaves the function"
    # apigw-timeout is auto: fixed in this sweep, so it lands resolved
    assert found[orders]["RecordState"] == "ARCHIVED" and found[orders]["Compliance"]["Status"] == "PASSED"

    sweep(runtime, 1_750_000_600)
    again = findings(hub)
    assert len(hub.get_findings()["Findings"]) == 2, "a re-import updates, never duplicates"
    assert again[mailer]["CreatedAt"] == secret["CreatedAt"] != again[mailer]["UpdatedAt"]
    assert again[mailer]["RecordState"] == "ACTIVE"


def test_a_finding_that_goes_away_is_marked_resolved(hub, aws, make_runtime):
    runtime = make_runtime()
    sweep(runtime, 1_750_000_000)
    aws.client("lambda").update_function_configuration(FunctionName="mailer",
                                                       Environment={"Variables": {"LOG_LEVEL": "INFO"}})
    sweep(runtime, 1_750_003_600)
    mailer = findings(hub)[finding_id("env-secrets", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mailer")]
    assert mailer["RecordState"] == "ARCHIVED" and mailer["Compliance"]["Status"] == "PASSED"
    assert mailer["UpdatedAt"].startswith("2025-06-15T16:")


def test_only_policies_that_really_ran_can_resolve(aws):
    sink = SecurityHubSink(Clients("us-east-1"), ACCOUNT, clock=lambda: 0)
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mailer"
    old = {"Id": finding_id("env-secrets", arn), "Resources": [{"Id": arn}], "CreatedAt": "2025-01-01T00:00:00Z",
           "ProductFields": {"safetycatch/policy": "env-secrets"}, "Severity": {"Label": "HIGH"}, "Description": "x"}
    assert sink.records([], {arn: {"apigw-timeout"}}, {old["Id"]: old}) == []  # env-secrets did not run
    (resolved,) = sink.records([], {arn: {"env-secrets"}}, {old["Id"]: old})
    assert resolved["RecordState"] == "ARCHIVED" and resolved["CreatedAt"] == "2025-01-01T00:00:00Z"


def test_dry_run_imports_nothing(hub, make_runtime, calls):
    runtime = make_runtime(mode="dry-run")
    runtime.engine(ACCOUNT, "us-east-1").sweep(act=True)
    assert not [c for c in calls.calls if c.startswith("securityhub.")]
    assert hub.get_findings()["Findings"] == []


def test_security_hub_off_is_one_clear_error_and_decisions_stand(aws, make_runtime, monkeypatch):
    """moto accepts imports into a hub that is not enabled, so AWS's answer is stubbed on a real client."""
    monkeypatch.setenv("SAFETYCATCH_SECURITYHUB", "on")
    aws.function("mailer", Environment=SECRET_ENV)
    runtime = make_runtime()
    engine = runtime.engine(ACCOUNT, "us-east-1")
    client = engine.sink.clients("securityhub")
    with Stubber(client) as stubber:
        stubber.add_client_error("get_findings", "InvalidAccessException", "Account is not subscribed to AWS Security "
                                 "Hub", 401)
        report = engine.sweep(act=True).to_json()
    assert [f["outcome"] for f in report["findings"]] == ["reported"]  # no Slack here: nobody was notified
    assert report["errors"] == ["not notified: Slack is not configured (set SAFETYCATCH_SLACK_SECRET and "
                                "SAFETYCATCH_SLACK_CHANNEL)",
                                "Security Hub GetFindings refused: InvalidAccessException (is Security Hub enabled "
                                "in this region?)"]
    with Stubber(client) as stubber, pytest.raises(SecurityHubUnavailable):
        stubber.add_client_error("get_findings", "AccessDeniedException", "no", 403)
        engine.sink.publish(report["findings"], {report["findings"][0]["function"]: {"env-secrets"}})


def test_the_iam_policies_grow_by_exactly_the_two_sink_calls(hub, make_runtime, calls):
    sweep(make_runtime(), 1_750_000_000)
    used = {c for c in calls.calls if c.startswith("securityhub.")}
    assert used == {"securityhub.GetFindings", "securityhub.BatchImportFindings"}
    for policy in [json.loads(iam.policy_path(s).read_text()) for s in iam.stages()] + [iam.member_policy()]:
        statements = [s for s in policy["Statement"] if any(str(a).startswith("securityhub:") for a in s["Action"])]
        assert {(a, s["Resource"]) for s in statements for a in s["Action"]} == {
            ("securityhub:BatchImportFindings", "arn:aws:securityhub:*:*:product/*/default"),
            ("securityhub:GetFindings", "arn:aws:securityhub:*:*:hub/default")}


def test_scan_format_ocsf_prints_one_compliance_finding_per_line(aws, capsys):
    aws.function("mailer", Environment=SECRET_ENV)
    assert main(["scan", "--format", "ocsf"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    event = json.loads(line)
    assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2003, 2, 200301)
    assert event["compliance"] == {"control": "env-secrets", "standards": ["safetycatch AWS Lambda footguns"],
                                   "status_id": 3, "status": "Fail"}
    assert event["severity_id"] == 4 and event["cloud"]["account"]["uid"] == ACCOUNT
    assert event["resources"][0]["uid"].endswith(":function:mailer") and event["metadata"]["version"] == "1.3.0"
    assert event["finding_info"]["uid"] == finding_id("env-secrets", event["resources"][0]["uid"])
    assert isinstance(event["time"], int) and "Tr0ub4dor" not in line


def test_the_sink_stays_off_unless_enabled(aws, make_runtime):
    assert make_runtime().engine(ACCOUNT, "us-east-1").sink is None
