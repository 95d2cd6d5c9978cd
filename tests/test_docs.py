"""The safety guarantees page names real tests (it cannot drift from the suite)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_the_safety_page_exists():
    page = (ROOT / "docs" / "safety.md").read_text()
    current_file = None
    named = 0
    for match in re.finditer(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`", page):
        path, name, sibling = match.groups()
        if path:
            current_file = ROOT / path
            assert current_file.exists(), path
        name = name or sibling
        if name:
            assert current_file is not None
            source = current_file.read_text()
            assert re.search(rf"^(def|class|    def) {name}\b|^def {name}\(", source, re.M) or \
                f"def {name}(" in source, f"{current_file.name}::{name}"
            named += 1
    assert named >= 40
