"""Packaging says what it built (issue 23.5): the account, the region and where the region came from (a silent
us-east-1 default compiles the wrong function ARNs), the stage and the approvers - and warns when nobody can
approve, because approve-mode fixes then wait until they expire."""

from __future__ import annotations

from pathlib import Path

import pytest

from safetycatch.build import steps as build
from safetycatch.build.slim import SlimReport

NOBODY = {"settings": {"approvers": [], "approver_groups": []},
          "policies": {"memory-cpu": {"mode": "approve"}, "batch-partial-failure": {"mode": "approve"},
                       "apigw-timeout": {"mode": "auto"}}}


def test_no_region_set_is_said_and_nobody_to_approve_is_a_warning(monkeypatch):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    lines = build.build_summary("prod", "123456789012", "us-east-1", NOBODY)
    assert lines[0] == ("built stage prod for account 123456789012, region us-east-1 (no region set (AWS_REGION, "
                        "AWS_DEFAULT_REGION or the profile's): the default): the bot's own roles and functions are "
                        "named in 123456789012 / us-east-1")
    assert lines[1] == "approvers: none"
    assert lines[2].startswith("warning: nobody can approve: approvers and approver_groups are empty in "
                               "policies/settings.yaml, so approve-mode fixes (batch-partial-failure, memory-cpu) "
                               "wait until they expire")


def test_approvers_are_listed_and_the_region_source_named(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    data = {**NOBODY, "settings": {"approvers": ["U0123ABCD"], "approver_groups": ["S0SRE"]}}
    lines = build.build_summary("prod", "123456789012", "eu-west-1", data)
    assert "region eu-west-1 (from AWS_REGION)" in lines[0]
    assert lines[1:] == ["approvers: U0123ABCD, group S0SRE"]


def test_make_package_prints_the_summary_after_the_artifact(monkeypatch, capsys, tmp_path):
    """``python -m safetycatch.build package`` (what ``make package`` runs) with ACCOUNT and no region: the summary and
    the warning come after the artifact lines (the packaging itself is tests/cli/build/test_package.py's)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("ACCOUNT", "210987654321")
    built: dict[str, object] = {}
    zip_path = build.OUT / "deployment.zip"

    def package(stage: str, account: str, region: str) -> tuple[Path, SlimReport]:
        built.update(stage=stage, account=account, region=region)
        return zip_path, SlimReport(before=300_000, after=200_000)

    monkeypatch.setattr(build, "package", package)
    assert build.main(["package", "prod"]) == 0
    out, err = capsys.readouterr()
    assert built == {"stage": "prod", "account": "210987654321", "region": "us-east-1"}
    assert "built stage prod for account 210987654321, region us-east-1 (no region set" in out
    assert "approvers: none" in out and err.startswith("warning: nobody can approve")


@pytest.mark.parametrize("argv", [["package", "a", "b"]])
def test_usage_stays_exit_2(argv, capsys):
    assert build.main(argv) == 2
