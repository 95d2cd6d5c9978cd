"""A deploy path that needs nothing the README doesn't say (issue 16.7): the JSON output schema lives in the
repository and real output validates against it; README lists what to do before deploying; packaging refuses a
Python that is not the layer's."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from jsonschema import Draft202012Validator

from chalicelib.act.fixes import ACTIONS
from chalicelib.checks import REGISTRY
from chalicelib.store.state import table_definition
from safetycatch.build.steps import BuildError, check_python, layer_python
from tests.conftest import EVENTS, ROOT
from tests.world.cli_helpers import run_json

SCHEMA = json.loads((ROOT / "docs" / "output-schema.json").read_text())
TABLE = "safetycatch-schema-state"
# DESIGN.md's JSON output contract: every outcome a finding may have
OUTCOMES = ("reported", "fixed", "pending-approval", "notified", "dry-run", "exempt", "failed", "muted")


def validator(kind: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator({"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{kind}"})


def test_the_schema_names_every_policy_outcome_and_fix_action():
    defs = SCHEMA["$defs"]
    assert set(defs["policy_id"]["enum"]) == set(REGISTRY)
    assert set(defs["finding"]["properties"]["outcome"]["enum"]) == set(OUTCOMES)
    assert set(defs["fix"]["properties"]["action"]["enum"]) == set(ACTIONS)


def test_real_output_validates_against_the_schema(aws, capsys, monkeypatch):
    aws.client("dynamodb").create_table(**table_definition(TABLE))
    monkeypatch.setenv("SAFETYCATCH_TABLE", TABLE)
    aws.rest_api(aws.function("example-fn", timeout=30), path="orders")
    aws.sqs_mapping(aws.function("worker"), "worker-queue")
    aws.function("mailer", Environment={"Variables": {"SMTP_PASSWORD": "not-a-real-password-0000"}})
    report = run_json(capsys, "scan", "--fix", "--format", "json")
    validator("scan").validate(report)
    assert {f["outcome"] for f in report["findings"]} == {"fixed", "pending-approval", "reported"}
    validator("replay").validate(run_json(capsys, "replay", str(EVENTS), "--format", "json"))
    validator("pending").validate(run_json(capsys, "pending", "--format", "json"))
    validator("history").validate(run_json(capsys, "history", "--format", "json"))
    fix_id = next(f["fix"]["id"] for f in report["findings"] if f["outcome"] == "fixed")
    validator("undo").validate(run_json(capsys, "undo", fix_id, "--format", "json"))
    validator("explain").validate(run_json(capsys, "explain", "--format", "json"))
    several = run_json(capsys, "scan", "--regions", "us-east-1,eu-west-1", "--format", "json")
    validator("scan").validate(several)
    assert (several["account"], several["region"]) == (None, None)
    with pytest.raises(Exception, match="is not one of"):
        validator("scan").validate({**report, "findings": [{**report["findings"][0], "outcome": "sent"}]})


def test_readme_links_the_schema_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/output-schema.json)" in readme
    assert "../shared" not in readme and "DESIGN.md" not in readme  # a clone has neither


def test_readme_says_what_to_do_before_deploying():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Before you deploy", 1)[1].split("\n### ", 1)[0]
    items = re.findall(r"^\d+\. \*\*(.+?)\*\*", section, re.M)
    assert items == ["A CloudTrail trail.", "`approvers`", "`SAFETYCATCH_SLACK_CHANNEL`",
                     "Policy changes need a redeploy.", "The Python of `.venv` is the Python of the layer."]
    assert ".chalice/config.json" in section and "environment_variables" in section
    assert "make python-matches-layer" in section


def test_packaging_refuses_a_python_that_is_not_the_layers():
    assert layer_python("dev") == layer_python("prod") == (3, 11)
    check_python("dev", (3, 11))
    with pytest.raises(BuildError, match=r"\.venv runs Python 3\.12 but stage prod's Powertools layer is for "
                                         r"Python 3\.11: make clean, then make package PYTHON=python3\.11"):
        check_python("prod", (3, 12))
    with pytest.raises(BuildError, match="no Powertools layer"):
        layer_python("dev", {"stages": {"dev": {"layers": ["arn:aws:lambda:us-east-1:1:layer:other:1"]}}})


def test_make_package_and_deploy_run_the_python_check_first():
    planned = subprocess.run(["make", "-n", "deploy", "STAGE=prod", "BUCKET=b"], cwd=ROOT, capture_output=True,
                             text=True, check=True, timeout=60).stdout
    check, package = planned.find("safetycatch.build check-python prod"), planned.find("safetycatch.build package prod")
    assert 0 <= check < package, planned
