"""The built Lambda package carries exactly the policies in policies/, compiled, and no dev-only code."""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict

import pytest

from chalicelib.policy.settings import COMPILED_PATH, from_json, load
from safetycatch.build.steps import ROOT, package


@pytest.mark.slow
def test_package_carries_exactly_the_policies(tmp_path):
    zip_path, _ = package(tmp_path / "package", derive_iam=False, account="123456789012", region="us-east-1")
    assert not COMPILED_PATH.exists(), "the compiled policies live only in the package"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        compiled = json.loads(archive.read("chalicelib/compiled_policies.json"))
    packaged, repo = from_json(compiled), load(str(ROOT / "policies"))
    assert packaged.policies == repo.policies
    identities = {"self_role_patterns", "own_functions"}  # the bot's exact roles and functions (test_identities.py)
    assert {k: v for k, v in asdict(packaged.settings).items() if k not in identities} == \
        {k: v for k, v in asdict(repo.settings).items() if k not in identities}
    assert sorted(compiled["policies"]) == sorted(p.stem for p in (ROOT / "policies").glob("*.yaml")
                                                  if p.stem != "settings")
    top_level = {n.split("/", 1)[0] for n in names}
    for dev_only in ("safetycatch", "tests", "moto", "rich", "yaml", "boto3", "botocore", "policies", "bench"):
        assert dev_only not in top_level, dev_only
    assert "app.py" in names and not any(n.endswith(".yaml") for n in names)
