"""Every usage example in a docstring (``>>>``) is run: an example that no longer matches the code fails here.

Examples that need an AWS account, Slack or a running engine are written as plain code (no prompt) and are
not run; everything with a prompt must pass on its own.
"""

from __future__ import annotations

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _modules_with_examples() -> list[str]:
    names = []
    for folder in ("chalicelib", "safetycatch", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    assert "chalicelib.checks.apigw_timeout" in MODULES and "chalicelib.intake.events" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_usage_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
