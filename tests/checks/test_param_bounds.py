"""Params that cannot make a fix harmful (issue 16.5): every param has bounds, related params have rules, both
enforced by ``lint`` and by policy loading, shown by ``explain``; the timeout fix has a floor."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from chalicelib.checks import REGISTRY
from chalicelib.policy.settings import PolicyError, load
from safetycatch.main import main
from tests.conftest import POLICIES


def policies_with(tmp_path: Path, policy: str, params: dict) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    doc = yaml.safe_load((target / f"{policy}.yaml").read_text())
    doc["params"].update(params)
    (target / f"{policy}.yaml").write_text(yaml.safe_dump(doc))
    return target


def test_every_param_has_bounds_its_default_meets():
    for check in REGISTRY.values():
        for param in check.params:
            if param.kind in (int, float):
                assert param.minimum is not None and param.maximum is not None, f"{check.id}.{param.name}"
            assert param.out_of_bounds(param.default) is None, f"{check.id}.{param.name}"
            assert param.bounds() != "-", f"{check.id}.{param.name}"
        for rule in check.rules:
            assert rule.holds(check.defaults()), f"{check.id}: {rule.text}"
            assert set(rule.params) <= {p.name for p in check.params}


@pytest.mark.parametrize("policy, params, problem", [
    ("apigw-timeout", {"buffer_seconds": 40}, "params.buffer_seconds: must be <= 10, got 40"),
    ("apigw-timeout", {"min_timeout_seconds": 0}, "params.min_timeout_seconds: must be >= 1, got 0"),
    ("apigw-timeout", {"buffer_seconds": 10, "min_timeout_seconds": 25},
     "params: buffer_seconds + min_timeout_seconds <= 29"),
    ("memory-cpu", {"max_memory_mb": 512, "target_memory_mb": 256}, "params: target_memory_mb > max_memory_mb"),
    ("reserved-concurrency", {"min": 950}, "params: min + min_unreserved <= account_limit"),
    ("runaway-loop", {"sensitivity": 1000}, "params: invocations_per_minute / sensitivity >= 50"),
    ("runaway-loop", {"invocations_per_minute": 20}, "params: invocations_per_minute / sensitivity >= 50"),
    ("runaway-loop", {"invocations_per_minute": 0, "concurrent_executions": 0, "watch_recursion_dropped": False},
     "params: the alarm watches something"),
    ("reserved-concurrency", {"tag_key": "x" * 300}, "params.tag_key: expected 1-256 characters, got 300"),
    ("tmp-storage", {"patterns": ["ENOSPC"] * 101}, "params.patterns: expected at most 100 items, got 101"),
])
def test_out_of_bounds_params_are_refused_by_lint_and_loading(tmp_path, capsys, policy, params, problem):
    directory = policies_with(tmp_path, policy, params)
    assert main(["lint", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"safetycatch: {policy}.yaml: {problem}" in err, err
    with pytest.raises(PolicyError):
        load(str(directory))
    assert main(["scan", "--policies", str(directory)]) == 2  # the bot never runs with them either
    assert problem in capsys.readouterr().err


def test_the_timeout_fix_never_sets_a_timeout_under_its_floor(aws, capsys):
    """An HTTP API integration of 5 s: 5 - 4 s of buffer would be a 1 s timeout. No automatic change."""
    arn = aws.function("quick", timeout=30)
    aws.http_api(arn, route="GET /quick", timeout_ms=5000)
    assert main(["scan", "--fix", "--no-state", "--format", "json"]) == 0
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding["policy"] == "apigw-timeout" and finding["fix"] is None
    assert "would leave a Timeout of 1s, under the floor of 3s: no automatic change" in finding["message"]
    assert aws.client("lambda").get_function(FunctionName="quick")["Configuration"]["Timeout"] == 30


def test_explain_shows_bounds_and_rules(capsys):
    assert main(["explain", "apigw-timeout"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^buffer_seconds +int +4 +0-10 +Seconds kept", text, re.M)
    assert re.search(r"^min_timeout_seconds +int +3 +1-25 ", text, re.M)
    assert "rule: buffer_seconds + min_timeout_seconds <= 29" in text
    assert main(["explain", "runaway-loop", "--format", "json"]) == 0
    (policy,) = json.loads(capsys.readouterr().out)["policies"]
    by_name = {p["name"]: p for p in policy["params"]}
    assert (by_name["sensitivity"]["minimum"], by_name["sensitivity"]["maximum"]) == (1, 1000)
    assert any(rule.startswith("invocations_per_minute / sensitivity >= 50") for rule in policy["rules"])
