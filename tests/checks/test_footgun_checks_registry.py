"""The five newer checks as the registry, lint, explain and the price list see them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.act import fixes, gateway
from chalicelib.checks import (
    FACETS,
    REGISTRY,
    env_secrets,
)
from chalicelib.core.model import AccountFacts, FunctionRef, FunctionSnapshot
from chalicelib.domain import pricing
from chalicelib.policy.settings import PolicyError, validate
from safetycatch.build import iam
from safetycatch.main import main

NEW = {"package-size": "notify", "env-secrets": "notify", "cold-start-latency": "notify",
       "provisioned-idle": "approve", "memory-cpu": "approve"}


def test_registered_with_the_contract_modes_and_declared_facets():
    for policy_id, mode in NEW.items():
        check = REGISTRY[policy_id]
        assert check.default_mode == mode and check.doc and check.title
        assert check.needs <= FACETS
        for action in check.fix_actions:
            assert set(fixes.ACTIONS[action].writes) <= set(gateway.WRITES)
    assert "lambda:PutProvisionedConcurrencyConfig" in iam.declared_actions()


def test_repo_policies_lint_and_explain(capsys):
    assert main(["lint", "policies"]) == 0
    for policy_id in NEW:
        assert main(["explain", policy_id]) == 0
    out = capsys.readouterr().out
    assert "lambda:ListProvisionedConcurrencyConfigs" in out and "cloudwatch:ListMetrics" in out
    assert "set-memory" in out and "scale-provisioned-concurrency" in out


@pytest.mark.parametrize("file, doc, problem", [
    ("provisioned-idle.yaml", {"params": {"min_utilization": 1.5}}, "must be <= 1.0"),
    ("provisioned-idle.yaml", {"mode": "auto"}, None),  # has a fix: auto is allowed, if unwise
    ("memory-cpu.yaml", {"params": {"target_memory_mb": 20000}}, "must be <= 10240"),
    ("env-secrets.yaml", {"params": {"ignore": "API_KEY"}}, "expected list"),
    ("env-secrets.yaml", {"mode": "auto"}, "no automatic fix"),
    ("package-size.yaml", {"params": {"max_total_mb": 0}}, "must be >= 1"),
    ("cold-start-latency.yaml", {"params": {"suggested_pc": "two"}}, "expected int"),
])
def test_param_schemas(file, doc, problem):
    if problem is None:
        validate({file: doc})
        return
    with pytest.raises(PolicyError, match=problem):
        validate({file: doc})


def test_monthly_and_per_million_arithmetic():
    # The seed's example: 100 slots "to be safe" at 1 GB is about $1,080-1,095 a month.
    assert pricing.provisioned_monthly(100, 1024) == pytest.approx(100 * 730 * 3600 * 0.0000041667)
    assert pricing.provisioned_monthly(1, 2048, ("arm64",)) == pytest.approx(2 * 730 * 3600 * 0.0000033334)
    assert pricing.per_million(100, 128) == pytest.approx(0.1 * 0.125 * 0.0000166667 * 1e6 + 0.20)
    assert [pricing.usd(x) for x in (1095.01, 6.4483, 0.00421)] == ["$1,095", "$6.45", "$0.0042"]


@given(env=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
                           st.text(min_size=8, max_size=120), max_size=8))
def test_env_secrets_output_never_contains_a_value(env):
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), env=env)
    for finding in env_secrets.evaluate(fn, {"ignore": []}, AccountFacts()):
        text = finding.message + json.dumps(finding.evidence)
        for _name, value in env.items():
            if value.strip() and not any(value in other for other in env):  # a value equal to a name is a name
                assert value not in text and json.dumps(value)[1:-1] not in text
