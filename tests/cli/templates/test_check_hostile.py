"""Items 3 and 4 of issue 25: hostile templates get exit 2 and one line (file and line), never a traceback,
never a walk outside the repository, bounded work per file; one file's failure never loses the others' results.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]

FUNCTION = """\
  {name}:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      InlineCode: "def handler(e, c): return {{}}"
{extra}"""


def sam(*functions: str, head: str = "") -> str:
    return ("AWSTemplateFormatVersion: '2010-09-09'\nTransform: AWS::Serverless-2016-10-31\n" + head +
            "Resources:\n" + "".join(functions))


def fn(name: str = "Api", **props: str) -> str:
    extra = "".join(f"      {k}: {v}\n" for k, v in props.items())
    return FUNCTION.format(name=name, extra=extra)


def check(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv, "--policies", str(ROOT / "policies")])
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err


def one_line(err: str, file: Path) -> str:
    lines = [line for line in err.splitlines() if line.startswith("safetycatch: ")]
    assert len(lines) == 1 and str(file) in lines[0], err
    return lines[0]


# -- item 4: an integration timeout under 7 s (a finding without a fix), as SAM's implicit_api_with_timeout -----

IMPLICIT_API_WITH_TIMEOUT = sam(fn("ShortTimeout", Timeout="10", Events="""
        GetHtml:
          Type: Api
          Properties:
            Path: /
            Method: get
            TimeoutInMillis: 5000"""))


def test_an_integration_timeout_under_7s_is_a_finding_without_a_fix(capsys, tmp_path):
    path = tmp_path / "implicit_api_with_timeout.yaml"
    path.write_text(IMPLICIT_API_WITH_TIMEOUT)
    code, out, err = check(capsys, str(path), "--format", "json")
    assert code == 0, err
    (finding,) = [f for f in json.loads(out)["findings"] if f["policy"] == "apigw-timeout"]
    assert finding["fix"]["value"] is None and "no automatic change" in finding["fix"]["change"]


def test_one_bad_file_never_loses_the_others_results(capsys, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(IMPLICIT_API_WITH_TIMEOUT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Resources: [unclosed\n")
    code, out, err = check(capsys, str(bad), str(good), "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert {f["resource"] for f in data["findings"]} == {"ShortTimeout"}
    assert len(data["errors"]) == 1 and str(bad) in data["errors"][0]
    one_line(err, bad)


# -- item 3: hostile templates -----------------------------------------------------------------------------------

HOSTILE = {
    "find_in_map_loop": sam(fn(Timeout="!FindInMap [Loop, !FindInMap [Loop, a, b], b]"),
                            head="Mappings:\n  Loop:\n    a: {b: !FindInMap [Loop, a, b]}\n"),
    "vpc_config_list": sam(fn(VpcConfig="[subnet-1, subnet-2]")),
    "memory_1e400": sam(fn(MemorySize="1e400", Timeout="1e400")),
    "events_list": sam(fn(Events="[1, 2]")),
    "environment_list": sam(fn(Environment="[a]")),
    "policies_weird": sam(fn(Policies="[{S3CrudPolicy: [x]}, 7, {Statement: 3}]")),
    "sub_loop": sam(fn(Timeout="!Sub ['${A}', {A: !Sub ['${A}', {A: x}]}]")),
    "resources_weird": "Resources:\n  A: 7\n  B: {Type: [x]}\n  C: {Type: AWS::Lambda::Function, Properties: [1]}\n",
    "deep_if": sam(fn(Timeout="!If [c, " * 200 + "3" + ", 4]" * 200)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_templates_are_read_or_refused_in_one_line(capsys, tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(HOSTILE[name])
    code, out, err = check(capsys, str(path), "--format", "json")
    assert code in (0, 1, 2), err
    if code == 2:
        assert "line" in one_line(err, path) or ":" in err


def test_json_nested_3000_deep_is_one_line(capsys, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"Resources": {"A": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": '
                    + "[" * 3000 + "]" * 3000 + "}}}}")
    code, _, err = check(capsys, str(path))
    assert code == 2
    one_line(err, path)


def test_yaml_nested_deep_is_one_line(capsys, tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("Resources:\n  A:\n    Type: AWS::Lambda::Function\n    Properties:\n      Timeout: "
                    + "[" * 3000 + "]" * 3000 + "\n")
    code, _, err = check(capsys, str(path))
    assert code == 2
    one_line(err, path)


def test_billion_laughs_aliases_are_bounded(capsys, tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "laughs.yaml"
    path.write_text("Metadata:\n" + "".join(f"  {line}\n" for line in lines) + sam(fn(Tags="{t: *a8}"))
                    .split("\n", 2)[2])
    code, _, err = check(capsys, str(path))
    assert code in (0, 2), err


@pytest.mark.parametrize("uri", ["../outside", "/usr/share", "../../", "src/../../outside"])
def test_code_paths_never_leave_the_templates_tree(capsys, tmp_path, monkeypatch, uri):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "big.bin").write_bytes(os.urandom(4096))
    path = repo / "template.yaml"
    path.write_text(sam(fn(CodeUri=uri)).replace('      InlineCode: "def handler(e, c): return {}"\n', ""))
    monkeypatch.chdir(repo)
    code, out, err = check(capsys, str(path), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    (note,) = data["notes"]
    assert any("outside" in text and "not read" in text for text in note["notes"]), note


def test_a_symlink_out_of_the_tree_is_not_followed(tmp_path):
    from safetycatch.templates import read

    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.bin").write_bytes(os.urandom(300_000))
    (repo / "src" / "link").symlink_to(tmp_path / "secret")
    (repo / "src" / "file-link").symlink_to(tmp_path / "secret" / "key.bin")
    (repo / "src" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    path = repo / "template.yaml"
    path.write_text(sam(fn(CodeUri="src")).replace('      InlineCode: "def handler(e, c): return {}"\n', ""))
    (function,) = read(path)
    assert 0 < function.snapshot.code_size < 10_000


def test_odd_terraform_shapes_are_read_or_refused_in_one_line(capsys, tmp_path):
    planned = [{"address": "aws_lambda_function.a", "type": "aws_lambda_function", "name": "a", "mode": "managed",
                "values": {"function_name": ["x"], "timeout": "1e400", "memory_size": {"a": 1},
                           "environment": "oops", "vpc_config": {"subnet_ids": 3}, "tags": [1]}},
               {"address": "aws_lambda_event_source_mapping.m", "type": "aws_lambda_event_source_mapping",
                "name": "m", "mode": "managed", "values": {"batch_size": "many", "function_response_types": 5}},
               {"address": "aws_api_gateway_integration.i", "type": "aws_api_gateway_integration", "name": "i",
                "mode": "managed", "values": {"timeout_milliseconds": [1], "http_method": {}}},
               "not a resource"]
    plan = {"format_version": "1.2", "planned_values": {"root_module": {"resources": planned,
                                                                         "child_modules": "x"}},
            "configuration": {"root_module": {"resources": [7, {"address": 3, "expressions": []}]}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    code, out, err = check(capsys, str(path), "--format", "json")
    assert code in (0, 1, 2), err
    if code == 2:
        one_line(err, path)
