"""An installable CLI: the wheel built from pyproject.toml, installed into a fresh venv outside the source tree
(as ``pipx install .`` does), runs ``safetycatch --help``, ``check`` and a scan against a moto server, also with a
Chalice project of the operator's own (its ``chalicelib/``) on ``PYTHONPATH``. It installs two packages:
``safetycatch`` (the CLI, the default policies as its package data) and ``chalicelib`` (the bot the CLI runs).

The wheel's dependencies are installed by pip from the package index (pip's cache makes it quick after the
first run), constrained to the versions requirements-dev.txt pins, so the test runs what an operator gets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from safetycatch.local.sandbox import FAKE_CREDENTIALS, SandboxAccount, moto_server

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("pyproject.toml", "README.md", "safetycatch", "chalicelib", "policies")


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(argv[:4])}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def chalice_project(tmp_path_factory) -> Path:
    """An operator's own Chalice project: its app.py and a chalicelib/ package of its own (no bot modules)."""
    project = tmp_path_factory.mktemp("their-project")
    (project / "chalicelib").mkdir()
    (project / "chalicelib" / "__init__.py").write_text("")
    (project / "chalicelib" / "orders.py").write_text("def total(items):\n    return sum(items)\n")
    (project / "app.py").write_text("from chalice import Chalice\n\napp = Chalice(app_name='orders')\n")
    return project


def _clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of the suite, nothing of the source tree: an operator's shell."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL",
                                                            "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CACHE_DIR")}
    return {**keep, "PATH": "/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel (built from a copy of the sources, so parallel runs never share a build directory) installed
    with its dependencies into a fresh venv; returns the venv's bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                             "compiled_policies.json"))
        else:
            shutil.copy2(path, source / name)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(work / "dist")], cwd=work)
    (wheel,) = (work / "dist").glob("safetycatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chalicelib/inventory/__init__.py" in names and "chalicelib/checks/apigw_timeout.py" in names
    assert "safetycatch/policies/settings.yaml" in names and "safetycatch/build/__main__.py" in names
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"safetycatch", "chalicelib"}
    constraints = work / "constraints.txt"
    pins = [line for name in ("requirements.txt", "requirements-dev.txt")
            for line in (ROOT / name).read_text().splitlines() if "==" in line and not line.startswith("#")]
    constraints.write_text("".join(re.sub(r"\[.*?\]", "", pin) + "\n" for pin in pins))  # no extras in constraints
    _run([sys.executable, "-m", "venv", str(work / "venv")], cwd=work)
    _run([str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), "-c", str(constraints)],
         cwd=work, env=_clean_env(), timeout=600)
    return work / "venv" / "bin"


@pytest.mark.slow
def test_the_installed_cli_helps_and_imports_only_what_it_installed(installed, chalice_project):
    out = _run([str(installed / "safetycatch"), "--help"], cwd=installed.parent, env=_clean_env())
    assert "usage: safetycatch" in out and "doctor" in out and "scan" in out
    theirs = _run([str(installed / "safetycatch"), "--help"], cwd=chalice_project,
                  env=_clean_env(PYTHONPATH=str(chalice_project)))
    assert theirs == out, "a Chalice project's own chalicelib/ on PYTHONPATH does not shadow the bot's"
    lint = _run([str(installed / "safetycatch"), "lint"], cwd=installed.parent, env=_clean_env())
    assert "OK" in lint, "the shipped policies (package data) are found and valid"
    where = _run([str(installed / "python"), "-c", "import safetycatch, chalicelib.inventory; "
                  "from chalicelib.policy.settings import shipped_policies; "
                  "print(safetycatch.__file__, chalicelib.inventory.__file__, shipped_policies())"],
                 cwd=installed.parent, env=_clean_env())
    assert all(str(installed.parent) in path and str(ROOT) not in path for path in where.split()), where
    demo = subprocess.run([str(installed / "safetycatch"), "demo"], cwd=installed.parent, env=_clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert demo.returncode == 2 and demo.stderr.startswith("safetycatch: demo: needs moto, which this installation "
                                                           "lacks: pipx install 'safetycatch[demo]'"), demo.stderr
    absent = _run([str(installed / "python"), "-c", "import importlib.util as u; "
                   "print([m for m in ('chalice', 'moto', 'pytest') if u.find_spec(m)])"], cwd=installed.parent,
                  env=_clean_env())
    assert absent.strip() == "[]", "the operator CLI installs no dev-only library"
    requires = _run([str(installed / "python"), "-c", "import importlib.metadata as m; "
                     "print('\\n'.join(m.requires('safetycatch')))"], cwd=installed.parent, env=_clean_env())
    assert {"boto3", "aws-lambda-powertools", "slack-sdk", "PyYAML", "rich", "cfn-lint", "aws-sam-translator"} <= {
        line.split(">", 1)[0].split("<", 1)[0].split("[", 1)[0].strip() for line in requires.splitlines()
        if "extra ==" not in line}


@pytest.mark.slow
def test_the_installed_cli_scans_an_account(installed, chalice_project):
    with moto_server() as endpoint:
        aws = SandboxAccount()
        arn = aws.function("orders-api", timeout=30)
        aws.rest_api(arn, path="orders")
        env = _clean_env(AWS_ENDPOINT_URL=endpoint, PYTHONPATH=str(chalice_project), **FAKE_CREDENTIALS)
        out = _run([str(installed / "safetycatch"), "scan", "--format", "json"], cwd=chalice_project, env=env)
    report = json.loads(out)
    assert report["functions_scanned"] == 1 and report["errors"] == []
    assert [(f["policy"], f["outcome"]) for f in report["findings"] if f["policy"] == "apigw-timeout"] == [
        ("apigw-timeout", "reported")]


@pytest.mark.slow
def test_the_installed_cli_checks_a_sam_template_and_a_terraform_plan(installed, chalice_project, tmp_path):
    """``check`` runs from the base install (``pip install .``, ``pipx install .``, the pre-commit hook): issue 25,
    item 2. Outside the checkout, on the repository's own fixtures."""
    for name in ("sam.yaml", "terraform-plan.json"):
        shutil.copy(ROOT / "tests" / "templates" / name, tmp_path / name)
    command = [str(installed / "safetycatch"), "check", "sam.yaml", "terraform-plan.json", "--format", "json"]
    result = subprocess.run(command, cwd=tmp_path, env=_clean_env(PYTHONPATH=str(chalice_project)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["files"] == ["sam.yaml", "terraform-plan.json"] and report["errors"] == []
    policies = {(f["file"], f["policy"]) for f in report["findings"]}
    assert ("sam.yaml", "apigw-timeout") in policies and ("terraform-plan.json", "apigw-timeout") in policies
