"""The real artifact: `make package` builds a slim zip within budget that still imports everything the bot
needs, and a SAM template that cfn-lint passes and that follows the bot's own advice."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from safetycatch.build import iam, layer
from safetycatch.build import steps as build
from safetycatch.build.slim import BASELINE, imported_modules

ROOT = Path(__file__).resolve().parents[3]
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
API_GATEWAY_LIMIT_S = 29
SECRET_VALUE = re.compile(
    r"xox[abposr]-|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|-----BEGIN|^[A-Fa-f0-9]{32,}$|^[A-Za-z0-9+/=_-]{40,}$"
)
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE", re.I)
SECRET_REFERENCES = {"SAFETYCATCH_SLACK_SECRET"}  # hold a Secrets Manager id, never a value


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "dev"
    zip_path, report = build.package(out=out, stage="dev", derive_iam=False, account="123456789012",
                                     region="us-east-1")
    assert report.removed, "slimming removed the unused slack-sdk parts"
    return out


@pytest.mark.slow
def test_zip_is_within_budget(artifact):
    size = (artifact / "deployment.zip").stat().st_size
    assert size <= build.BUDGET_BYTES == 400_000, f"deployment.zip is {size:,} bytes"


@pytest.mark.slow
def test_zip_holds_the_bot_and_only_the_slack_sdk_it_uses(artifact):
    names = zipfile.ZipFile(artifact / "deployment.zip").namelist()
    assert "app.py" in names and "chalicelib/decide/engine.py" in names and "chalicelib/compiled_policies.json" in names
    assert not [n for n in names if n.split("/")[0] == "slack"], "the legacy slack shim is gone"
    for unused in ("slack_sdk/socket_mode/", "slack_sdk/oauth/", "slack_sdk/rtm", "slack_sdk/scim/",
                   "slack_sdk/audit_logs/", "slack_sdk/web/async_client.py", "slack_sdk/web/legacy_client.py"):
        assert not [n for n in names if n.startswith(unused)], unused
    assert not [n for n in names if n.split("/")[0] in ("boto3", "botocore", "aws_lambda_powertools", "moto",
                                                        "safetycatch", "tests", "yaml", "rich")]
    assert [n for n in names if n.endswith("dist-info/licenses/LICENSE")], "slack-sdk's licence ships with it"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], "no stale bytecode from test runs"


IMPORT_CHECK = """
import importlib, pkgutil, sys, time
root = sys.argv[1]
import app, chalicelib, slack_sdk
assert slack_sdk.__file__.startswith(root), slack_sdk.__file__
for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
    importlib.import_module(info.name)
for name in sys.argv[2:]:
    importlib.import_module(name)
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
verifier = SignatureVerifier("s3cr3t")
stamp, body = str(int(time.time())), "payload=%7B%7D"
assert verifier.is_valid(body, stamp, verifier.generate_signature(timestamp=stamp, body=body))
WebClient(token="xoxb-test", base_url="http://127.0.0.1:9/", retry_handlers=[RateLimitErrorRetryHandler(),
          ConnectionErrorRetryHandler()])
ActionsBlock(elements=[ButtonElement(text="Approve", action_id="approve", value="id", style="primary")]).to_dict()
SectionBlock(text="hello").to_dict()
WebhookClient("http://127.0.0.1:9/")
print("ok", len(sys.modules))
"""


def _is_module(name: str) -> bool:
    """``from slack_sdk import WebClient`` names a class, not a module: only modules are import-checked."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.slow
def test_the_slim_zip_imports_everything_the_bot_needs(artifact, tmp_path):
    with zipfile.ZipFile(artifact / "deployment.zip") as archive:
        archive.extractall(tmp_path)
    imported = {m for m in imported_modules(iam.source_files()) if "." in m}
    needed = sorted({*BASELINE, *(m for m in imported if _is_module(m))})
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, str(tmp_path), *needed],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def _template(artifact: Path) -> dict:
    return yaml.safe_load((artifact / "sam.yaml").read_text())


def _functions(template: dict) -> dict:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


@pytest.mark.slow
def test_cfn_lint_passes_on_every_template(artifact):
    templates = [artifact / "sam.yaml", *(ROOT / "deploy" / name for name in (
        "resources.yaml", "member-account.yaml", "iam-forwarder.yaml", "scp-protect-tags.yaml"))]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--format", "parseable", *map(str, templates)], capture_output=True,
                            text=True, timeout=300, env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_template_adds_what_the_bot_needs(artifact):
    resources = _template(artifact)["Resources"]
    table = resources["StateTable"]["Properties"]
    env = {**CONFIG["environment_variables"], **CONFIG["stages"]["dev"]["environment_variables"]}
    assert table["TableName"] == {"Fn::Sub": "safetycatch-${Stage}"}
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1" and [k["AttributeName"] for k in gsi["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    from chalicelib.store.state import table_definition
    definition = table_definition("x")
    assert table["KeySchema"] == definition["KeySchema"]
    assert table["AttributeDefinitions"] == definition["AttributeDefinitions"]
    assert resources["ModeParameter"]["Properties"]["Name"] == {"Fn::Sub": "/safetycatch/${Stage}/mode"}
    assert (
        env["SAFETYCATCH_MODE_PARAMETER"] == "/safetycatch/dev/mode" and env["SAFETYCATCH_TABLE"] == "safetycatch-dev"
    )
    secret = resources["SlackSecret"]["Properties"]
    assert "SecretString" not in secret, "the template never holds the secret's value"
    assert _template(artifact)["Parameters"]["Stage"]["AllowedValues"] == ["dev"]


def test_the_organisation_sweep_is_wired_on_sqs(artifact):
    """Issue 12: the worker reads the stack's queue with partial batch responses and bounded concurrency; the
    queue dead-letters a scope after fanout.MAX_RECEIVES tries."""
    from chalicelib.org.fanout import MAX_RECEIVES

    template = _template(artifact)
    resources, functions = template["Resources"], _functions(template)
    (worker,) = [props for props in functions.values() if any(
        e.get("Type") == "SQS" for e in (props.get("Events") or {}).values())]
    (source,) = [e["Properties"] for e in worker["Events"].values()]
    assert source["Queue"] == {"Fn::GetAtt": ["SweepQueue", "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the pollers follow the worker's reservation (more would throttle scopes into the dead-letter queue)
    assert source["ScalingConfig"]["MaximumConcurrency"] == worker["ReservedConcurrentExecutions"] == {
        "Ref": "SweepWorkerReservedConcurrency"}
    assert template["Parameters"]["SweepWorkerReservedConcurrency"]["Default"] == 10
    queue = resources["SweepQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["SweepDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": MAX_RECEIVES}
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]


@pytest.mark.slow
def test_bot_follows_its_own_advice(artifact):
    from chalicelib.policy.settings import Settings

    template = _template(artifact)
    functions = _functions(template)
    assert functions, "the template has the bot's functions"
    for logical, props in functions.items():
        reserved = template["Parameters"][props["ReservedConcurrentExecutions"]["Ref"]]
        assert reserved["Default"] >= reserved["MinValue"] >= 1, f"{logical}: reserved concurrency (footgun 9)"
        assert 256 <= props["MemorySize"] <= 1769, f"{logical}: memory sized (footgun 10)"
        assert props["Tracing"] == "Active"
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] != CONFIG["app_name"]
        assert props["Layers"] == [layer.reference()], "the pinned Powertools release, resolved in the stack's region"
        assert props["FunctionName"].startswith("safetycatch-dev")
    for props in (r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"):
        assert Settings().is_own_role(f"arn:aws:iam::123456789012:role/{props['RoleName']}"), props["RoleName"]
    api = functions.get("APIHandler")
    if api:  # the Slack routes: answer well inside API Gateway's 29 s (footgun 2)
        assert api["Timeout"] <= 25 < API_GATEWAY_LIMIT_S
    assert CONFIG["lambda_functions"]["api_handler"]["lambda_timeout"] <= 25


@pytest.mark.slow
def test_no_secret_in_any_environment(artifact):
    environments = [("config", CONFIG.get("environment_variables", {}))]
    environments += [(f"config:{s}", c.get("environment_variables", {})) for s, c in CONFIG["stages"].items()]
    environments += [(f"config:{f}", c.get("environment_variables", {}))
                     for f, c in CONFIG.get("lambda_functions", {}).items()]
    environments += [(f"sam:{k}", p.get("Environment", {}).get("Variables", {}))
                     for k, p in _functions(_template(artifact)).items()]
    for where, variables in environments:
        for name, value in variables.items():
            if where.startswith("sam:") and name == "SAFETYCATCH_SWEEP_QUEUE":
                assert value == {"Ref": "SweepQueue"}, "the packaged template gives the schedule the stack's queue"
                continue
            if where.startswith("sam:") and name == "SAFETYCATCH_SLACK_CHANNEL":
                assert value == {"Ref": "SlackChannel"}, "one place for the channel: the stack parameter"
                continue
            if where.startswith("sam:") and name in SECRET_REFERENCES:
                assert value == {"Ref": "SlackSecret"}, "the packaged template references the secret's ARN"
                continue
            assert isinstance(value, str), f"{where} {name}"
            assert not SECRET_VALUE.search(value), f"{where} {name} looks like a secret value"
            if SECRET_NAME.search(name):
                assert name in SECRET_REFERENCES and re.fullmatch(r"[\w/+=.@-]{1,512}", value), f"{where} {name}"


@pytest.mark.slow
def test_the_bot_passes_its_own_check_before_deploy(artifact, capsys):
    """Issue 17: CI runs ``safetycatch check --fail-on medium`` on the packaged template, and it passes."""
    from safetycatch.main import main

    code = main(["check", str(artifact / "sam.yaml"), "--fail-on", "medium", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["functions_checked"] >= 5 and report["errors"] == []
    assert code == 0, [f"{f['resource']}: {f['policy']} ({f['severity']})" for f in report["findings"]]


def test_layer_matches_the_runtime_chalice_packages_for():
    major, minor = sys.version_info[:2]
    for stage, config in CONFIG["stages"].items():
        for pinned in config["layers"]:
            assert f"/python{major}.{minor}/" in pinned, f"{stage}: layer for python{major}.{minor} (Lambda's runtime)"
            assert f"/{CONFIG.get('lambda_architecture', 'x86_64')}/" in pinned


def test_slack_manifest_is_one_paste():
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"
    manifest = yaml.safe_load(build.slack_manifest(url))
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/safetycatch"
    assert command["url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api/slack/commands"
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True, "request_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/slack/actions"}
    assert {"chat:write", "commands"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["socket_mode_enabled"] is False
    with pytest.raises(build.BuildError):
        build.slack_manifest("javascript:alert(1)")


def test_template_names_match_chalice_deploy_so_the_bot_knows_its_own_roles():
    from chalicelib.policy.settings import Settings

    layer = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7"
    template = {"Resources": {
        "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {"Layers": [layer]}},
        "ApiHandlerRole": {"Type": "AWS::IAM::Role", "Properties": {}},  # as chalice package spells it
        "Worker": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "WorkerRole": {"Type": "AWS::IAM::Role", "Properties": {}},
    }}
    done = build.finish_template(template, "prod", {"APIHandler": "api_handler", "Worker": "worker"})["Resources"]
    assert done["APIHandler"]["Properties"]["FunctionName"] == "safetycatch-prod"
    assert done["Worker"]["Properties"]["FunctionName"] == "safetycatch-prod-worker"
    assert [done[r]["Properties"]["RoleName"] for r in ("ApiHandlerRole", "WorkerRole")] == [
        "safetycatch-prod-api_handler", "safetycatch-prod-worker"]
    assert done["APIHandler"]["Properties"]["Layers"] == [{"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:"
                                                           "017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7"}]
    assert Settings().is_own_role("arn:aws:iam::123456789012:role/safetycatch-prod-api_handler")


def test_the_bot_s_reservations_are_stack_parameters_with_the_config_s_defaults(artifact):
    """Issue 27: an account with a small concurrency limit deploys smaller reservations (make deploy RESERVED=...,
    API_RESERVED=..., SWEEP_RESERVED=...) without editing the config; the defaults are .chalice/config.json's and
    add up to the 76 doctor counts."""
    from safetycatch.doctor import bot_reservations

    template = _template(artifact)
    by_function = {logical: props["ReservedConcurrentExecutions"]["Ref"]
                   for logical, props in _functions(template).items()}
    assert set(by_function.values()) == {"ReservedConcurrency", "ApiHandlerReservedConcurrency",
                                         "SweepWorkerReservedConcurrency"}
    parameters = template["Parameters"]
    assert {name: parameters[name]["Default"] for name in set(by_function.values())} == {
        "ReservedConcurrency": CONFIG["reserved_concurrency"],
        "ApiHandlerReservedConcurrency": CONFIG["lambda_functions"]["api_handler"]["reserved_concurrency"],
        "SweepWorkerReservedConcurrency": CONFIG["lambda_functions"]["sweep_worker"]["reserved_concurrency"]}
    assert parameters["SweepWorkerReservedConcurrency"]["MinValue"] == 2  # SQS's least MaximumConcurrency
    fixed = [r["Properties"]["ReservedConcurrentExecutions"] for r in template["Resources"].values()
             if r["Type"] == "AWS::Lambda::Function"]
    assert sum(parameters[ref]["Default"] for ref in by_function.values()) + sum(fixed) == sum(
        bot_reservations().values()) == 76
    makefile = (ROOT / "Makefile").read_text()
    for variable, parameter in (("RESERVED", "ReservedConcurrency"), ("API_RESERVED", "ApiHandlerReservedConcurrency"),
                                ("SWEEP_RESERVED", "SweepWorkerReservedConcurrency")):
        assert f"$(if $({variable}),{parameter}=$({variable}))" in makefile


def test_functions_of_one_reservation_parameter_must_agree():
    template = {"Resources": {name: {"Type": "AWS::Serverless::Function", "Properties": {
        "ReservedConcurrentExecutions": value}} for name, value in (("A", 10), ("B", 3))}}
    with pytest.raises(build.BuildError, match="B: reserved concurrency 3 differs from 10"):
        build._parameterise_reservations(template, {"A": "a", "B": "b"}, {"reserved_concurrency": 10})


@pytest.mark.slow
def test_the_packaged_settings_name_exactly_the_roles_and_functions_the_template_deploys(artifact):
    """The zip's compiled settings recognise the bot by the exact ARNs of what sam.yaml creates in the account it
    was packaged for (issue 11): no ``safetycatch-*`` role pattern, no function recognised by its role's name."""
    with zipfile.ZipFile(artifact / "deployment.zip") as archive:
        settings = json.loads(archive.read("chalicelib/compiled_policies.json"))["settings"]
    resources = _template(artifact)["Resources"]
    chalice = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function"]
    roles = {f"arn:aws:iam::123456789012:role/{resources[p['Role']['Fn::GetAtt'][0]]['Properties']['RoleName']}"
             for p in chalice}  # the roles that act (the dead-letter notifier's only posts to Slack)
    functions = {f"arn:aws:lambda:us-east-1:123456789012:function:{p['FunctionName']}" for p in chalice} | {
        "arn:aws:lambda:us-east-1:123456789012:function:"
        + r["Properties"]["FunctionName"]["Fn::Sub"].replace("${Stage}", "dev")
        for r in resources.values() if r["Type"] == "AWS::Lambda::Function"}
    assert roles and roles == set(settings["self_role_patterns"][:-1])
    assert settings["self_role_patterns"][-1] == "arn:aws:iam::*:role/safetycatch-remediation"
    assert functions == set(settings["own_functions"])


def _translated(artifact: Path, monkeypatch) -> dict:
    """The packaged template as CloudFormation will deploy it: SAM's own translator (aws-sam-translator)."""
    from samtranslator.translator.transform import transform

    template = _template(artifact)
    for props in _functions(template).values():
        props["CodeUri"] = "s3://artifacts/safetycatch/deployment.zip"  # what `aws cloudformation package` writes
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    return transform(template, {}, NoManagedPolicies())["Resources"]


@pytest.mark.slow
def test_no_event_falls_on_the_floor(artifact, monkeypatch):
    """Every asynchronously invoked function has an on-failure destination with the settings of its kind, every
    rule target a dead-letter queue and a retry policy, and only those rules may send to the queue."""
    from safetycatch.build import dead_letters

    resources = _translated(artifact, monkeypatch)
    queue_arn = {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    configs = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in resources.values()
               if c["Type"] == "AWS::Lambda::EventInvokeConfig"}
    expected = {"OnConfigChange": dead_letters.EVENT_HANDLER, "OnDependencyChange": dead_letters.EVENT_HANDLER,
                "OnRunawayAlarm": dead_letters.EVENT_HANDLER, "OnLambdaHealth": dead_letters.EVENT_HANDLER,
                "ScheduledSweep": dead_letters.SCHEDULE, "SlackWorker": dead_letters.SLACK_WORKER,
                "DeadLetterNotifier": dead_letters.AsyncSettings(2, 3600)}
    sam = _functions(_template(artifact))
    polled = {k for k, p in sam.items() if (events := p.get("Events")) and
              {e["Type"] for e in events.values()} <= dead_letters.POLLED_TYPES}  # SQS-fed: the queue's own DLQ
    functions = {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions - set(configs) - polled == {"APIHandler"}, "only the synchronous API handler has no destination"
    for logical in set(configs) - set(expected):  # a function added later: an event handler's settings by default
        assert configs[logical]["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}, logical
    for logical, settings in expected.items():
        assert configs[logical]["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}, logical
        assert (configs[logical]["MaximumRetryAttempts"], configs[logical]["MaximumEventAgeInSeconds"]) == (
            settings.max_retries, settings.max_age_s), logical
    rules = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    assert len(rules) >= 5
    for logical, rule in rules.items():
        (target,) = rule["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": queue_arn}, logical
        assert target["RetryPolicy"] == dead_letters.RULE_RETRY, logical
    (policy,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"
                 and r["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]]
    statement, deny = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert sorted(a["Fn::GetAtt"][0] for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(rules)
    # everyone else is denied (issue 24): not a rule (aws:SourceArn) and not a destination's role (aws:PrincipalArn)
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert deny["Condition"]["ArnNotEquals"]["aws:SourceArn"] == statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], "the destinations' roles may send"
    (sweep,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"
                and r["Properties"]["Queues"] == [{"Ref": "SweepQueue"}]]
    assert sweep["PolicyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_an_event_the_dead_letter_queue_refuses_is_alarmed(artifact, monkeypatch):
    """What neither the bot nor its queue took is lost: every destination's and every rule's failures to reach the
    queue are summed into alarms (at most 10 metrics each, CloudWatch's limit) that go to the notifier's topic."""
    from safetycatch.build import dead_letters

    resources = _translated(artifact, monkeypatch)
    alarms = {k: r["Properties"] for k, r in resources.items() if k.startswith("Undelivered")}
    watched: dict[str, set[str]] = {"DestinationDeliveryFailures": set(), "InvocationsFailedToBeSentToDlq": set()}
    for logical, alarm in alarms.items():
        *metrics, expression = alarm["Metrics"]
        assert expression == {"Id": "lost", "Expression": "SUM(METRICS())", "ReturnData": True}, logical
        assert 0 < len(metrics) <= dead_letters.MAX_ALARM_METRICS and not any(m["ReturnData"] for m in metrics)
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "DeadLetterAlarmTopic"}]
        assert alarm["AlarmName"]["Fn::Sub"].endswith(dead_letters.UNDELIVERED_SUFFIX)
        for metric in metrics:
            stat = metric["MetricStat"]["Metric"]
            watched[stat["MetricName"]].add(stat["Dimensions"][0]["Value"]["Ref"])
    senders = {c["Properties"]["FunctionName"]["Ref"] for c in resources.values()
               if c["Type"] == "AWS::Lambda::EventInvokeConfig"} - {"DeadLetterNotifier"}
    rules = {k for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"}
    assert watched == {"DestinationDeliveryFailures": senders, "InvocationsFailedToBeSentToDlq": rules}


@pytest.mark.slow
def test_the_queue_is_encrypted_kept_14_days_and_alarmed_into_slack(artifact):
    resources = _template(artifact)["Resources"]
    queue = resources["DeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 86400
    env = {**CONFIG["environment_variables"], **CONFIG["stages"]["dev"]["environment_variables"]}
    assert queue["QueueName"] == {"Fn::Sub": "safetycatch-${Stage}-dead-letters"}
    assert env["SAFETYCATCH_DLQ"] == "safetycatch-dev-dead-letters"
    alarm = resources["DeadLetterAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "DeadLetterAlarmTopic"}]
    assert not alarm["AlarmName"]["Fn::Sub"].startswith("safetycatch-runaway-"), "that prefix kills functions"
    subscription = resources["DeadLetterNotifierSubscription"]["Properties"]
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["DeadLetterNotifier", "Arn"]}
    notifier = resources["DeadLetterNotifier"]
    assert notifier["Type"] == "AWS::Lambda::Function" and "ZipFile" in notifier["Properties"]["Code"]
    assert notifier["Properties"]["ReservedConcurrentExecutions"] == 1
    assert notifier["Properties"]["Role"] == {"Fn::GetAtt": ["DeadLetterNotifierRole", "Arn"]}
