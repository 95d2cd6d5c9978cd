"""env-secrets on moto: it fires on the re-read function (CloudTrail shows ``environment: {}``), and the secret
values appear in no output at all - CLI JSON and tables, replay, the structured log, audit, approvals, dedupe."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call
from safetycatch.main import main

TABLE = "safetycatch-secrets-test"
SECRETS = {
    "SMTP_PASSWORD": "Tr0ub4dor-mailer-pw-61",                        # secret name, literal value
    "ORDERS_SYNC": "AKIAQ7X2M9K4W1Z8P5R3",                            # credential shape, harmless name
    "CI_HOOK": "ghp_R8d2Kx7Lq0Vw5Zm3Np9Tb4Yc6Hf1Js2Ga7Ue",
    "SIGNING": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSj\n-----END PRIVATE KEY-----",
}
FINE = {
    "DB_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
    "API_KEY": "{{resolve:ssm-secure:/prod/mailer/api-key:2}}",
    "TOKEN_TTL": "3600",
    "LOG_LEVEL": "INFO",
}


def _mailer(aws, memory=512):
    return aws.function("legacy-mailer", memory=memory, Environment={"Variables": {**SECRETS, **FINE}})


def _config_event(arn):
    # What CloudTrail records: the environment is redacted to {} in request and response alike.
    return api_call("UpdateFunctionConfiguration20150331v2",
                    {"functionName": arn, "environment": {}, "memorySize": 128},
                    {"functionName": "legacy-mailer", "functionArn": arn, "environment": {}, "memorySize": 128})


def test_fires_on_the_function_not_the_redacted_event(aws, runtime):
    arn = _mailer(aws)
    report = handle_event(_config_event(arn), runtime=runtime)
    (finding,) = [f for f in report["findings"] if f["policy"] == "env-secrets"]
    assert finding["outcome"] == "reported" and finding["severity"] == "high" and finding["fix"] is None
    for name in SECRETS:
        assert name in finding["message"]
    for name in FINE:
        assert name not in finding["message"]
    assert "AWS access key id" in finding["message"] and "PEM private key" in finding["message"]
    assert "4 environment variables hold a secret" in finding["message"]


def test_references_and_plain_settings_do_not_fire(aws, runtime):
    arn = aws.function("tidy", Environment={"Variables": FINE})
    aws.function("bare")
    report = handle_event(_config_event(arn), runtime=runtime)
    assert [f for f in report["findings"] if f["policy"] == "env-secrets"] == []
    scan = runtime.engine("123456789012", "us-east-1").sweep()
    assert [d for d in scan.decisions if d.finding.policy == "env-secrets"] == []


def test_ignore_param_and_exempt_tag(aws, make_runtime, tmp_path):
    (tmp_path / "env-secrets.yaml").write_text("mode: notify\nparams:\n  ignore: [ci_hook, ORDERS_SYNC, SIGNING]\n")
    (tmp_path / "settings.yaml").write_text("{}\n")
    arn = _mailer(aws)
    report = handle_event(_config_event(arn), runtime=make_runtime(policies=tmp_path))
    (finding,) = report["findings"]
    assert "SMTP_PASSWORD" in finding["message"] and "CI_HOOK" not in finding["message"]
    aws.client("lambda").tag_resource(Resource=arn, Tags={"safetycatch:exempt": "true"})
    report = handle_event(_config_event(arn), runtime=make_runtime(policies=tmp_path))
    assert [f["outcome"] for f in report["findings"]] == ["exempt"]


def test_secret_values_appear_in_no_output(aws, monkeypatch, tmp_path, capsys, captured_log):
    arn = _mailer(aws, memory=128)
    aws.metric_history("legacy-mailer", "Duration", 2500, unit="Milliseconds")  # so memory-cpu asks approval
    aws.metric_history("legacy-mailer", "Invocations", 10, unit="Count")
    events = tmp_path / "events.json"
    events.write_text(json.dumps([_config_event(arn)]))
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    assert main(["-v", "init"]) == 0
    for argv in (["-v", "replay", str(events), "--format", "json"], ["-v", "replay", str(events)],
                 ["-v", "scan", "--format", "json"], ["-v", "scan"], ["-v", "scan", "--fix", "--format", "json"],
                 ["-v", "scan", "--fix"], ["-v", "pending", "--format", "json"], ["-v", "explain", "env-secrets"]):
        assert main(argv) == 0, argv
    out = capsys.readouterr()
    outputs = {"stdout": out.out, "stderr": out.err, "log": captured_log.getvalue()}
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    outputs["state table"] = json.dumps(items)
    # The runs did report the secrets (by name), audit them and ask approval for the memory fix...
    assert "SMTP_PASSWORD" in outputs["stdout"] and "env-secrets" in outputs["log"]
    assert '"policy": {"S": "env-secrets"}' in outputs["state table"]
    assert '"status": {"S": "PENDING"}' in outputs["state table"]
    # ...and no value, nor a telling part of one, is anywhere.
    for name, value in SECRETS.items():
        for where, text in outputs.items():
            for fragment in {value, value[:12], value[-12:], json.dumps(value)[1:-1]}:
                assert fragment not in text, f"{name} leaked into {where}"


@pytest.mark.parametrize("variables", [{}, {"LOG_LEVEL": "DEBUG", "AUTH_MODE": "iam"}])
def test_quiet_functions(aws, runtime, variables):
    arn = aws.function("quiet", Environment={"Variables": variables})
    report = handle_event(_config_event(arn), runtime=runtime)
    assert [f for f in report["findings"] if f["policy"] == "env-secrets"] == []
