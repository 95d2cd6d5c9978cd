"""Policy files: validation with one clear line per problem, and what the Lambda package carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.checks import REGISTRY
from chalicelib.policy.settings import PolicyError, from_json, load, read_dir, validate
from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_repo_policies_are_valid_and_cover_registered_checks():
    policy_set = validate(read_dir(ROOT / "policies"))
    assert set(policy_set.policies) == set(REGISTRY)


@pytest.mark.parametrize(
    "files, expected",
    [
        (
            {"apigw-timeout.yaml": "mode: sometimes\n"},
            "apigw-timeout.yaml: mode: expected one of auto, approve, notify, off",
        ),
        (
            {"apigw-timeout.yaml": "params:\n  buffer_seconds: four\n"},
            "apigw-timeout.yaml: params.buffer_seconds: expected int",
        ),
        (
            {"apigw-timeout.yaml": "params:\n  buffer_seconds: -1\n"},
            "apigw-timeout.yaml: params.buffer_seconds: must be >= 0",
        ),
        (
            {"apigw-timeout.yaml": "params:\n  bufer_seconds: 4\n"},
            "apigw-timeout.yaml: params.bufer_seconds: unknown param",
        ),
        (
            {"apigw-timeout.yaml": "mode: auto\nmode: off\n"},
            "apigw-timeout.yaml: line 2: invalid YAML: duplicate key 'mode'",
        ),
        ({"apigw-timeout.yaml": "mode: [auto\n"}, "apigw-timeout.yaml: line"),
        ({"apigw-timeout.yaml": "- auto\n"}, "apigw-timeout.yaml: expected a mapping"),
        ({"apigw-timeout.yaml": "moed: auto\n"}, "apigw-timeout.yaml: moed: unknown key"),
        ({"no-such-check.yaml": "mode: auto\n"}, "no-such-check.yaml: no check named 'no-such-check'"),
        ({"batch-partial-failure.yaml": "severity: urgent\n"}, "batch-partial-failure.yaml: severity: expected one of"),
        ({"settings.yaml": "approvers: [alice]\n"}, "settings.yaml: approvers: 'alice' is not a valid id"),
        ({"settings.yaml": "approval_ttl_hours: 0\n"}, "settings.yaml: approval_ttl_hours: expected a number"),
        ({"settings.yaml": "self_role_pattern: x\n"}, "settings.yaml: self_role_pattern: unknown setting"),
        (
            {"reserved-concurrency.yaml": "params:\n  headroom: 0.5\n"},
            "reserved-concurrency.yaml: params.headroom: must be >= 1.0",
        ),
        (
            {"apigw-timeout.yaml": "!!python/object/apply:os.system ['true']\n"},
            "apigw-timeout.yaml: line 1: invalid YAML",
        ),
    ],
)
def test_invalid_policies_fail_with_one_line(tmp_path, capsys, files, expected):
    with pytest.raises(PolicyError) as err:
        validate(read_dir(write(tmp_path, files)))
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value)
    assert main(["lint", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("safetycatch: ") and out.err.count("\n") == 1 and "Traceback" not in out.err


def test_lint_accepts_the_repo_policies(capsys):
    assert main(["lint", str(ROOT / "policies")]) == 0
    assert "OK" in capsys.readouterr().out


def test_only_policies_with_a_file_are_enforced(tmp_path):
    policy_set = validate(read_dir(write(tmp_path, {"apigw-timeout.yaml": "params: {buffer_seconds: 3}\n"})))
    assert list(policy_set.policies) == ["apigw-timeout"]
    assert policy_set.policies["apigw-timeout"].params == {"buffer_seconds": 3, "min_timeout_seconds": 3}
    assert policy_set.settings.exempt_tag == "safetycatch:exempt"


def test_mode_off_disables_a_policy(tmp_path):
    policy_set = validate(read_dir(write(tmp_path, {"apigw-timeout.yaml": "mode: off\n"})))
    assert policy_set.enabled() == []


def test_compiled_json_round_trips(tmp_path):
    policy_set = load(str(ROOT / "policies"))
    again = from_json(json.loads(json.dumps(policy_set.to_json())))
    assert again == policy_set
