"""The docs cannot drift: the safety guarantees page names real tests; README's CLI section is `--help`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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


COMMON_OPTIONS = {"-h", "--help", "-v", "--verbose", "--profile"}  # README states these once for every command


def _help(capsys, *argv: str) -> str:
    from safetycatch.main import main

    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def _readme_cli_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The CLI", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()


def _readme_usage() -> dict[str, set[str]]:
    """command -> the options README's CLI block shows for it (continuation lines belong to the line above)."""
    usage: dict[str, set[str]] = {}
    current: list[str] = []
    for line in _readme_cli_block():
        code = line.split("  #", 1)[0]
        if line.startswith("safetycatch "):
            current = re.findall(r"safetycatch (\w[\w-]*)", code)
            for command in current:
                usage.setdefault(command, set())
        for command in current:
            usage[command] |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", code))
    return usage


def test_readme_cli_section_matches_safetycatch_help(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    top = _help(capsys)
    commands = re.findall(r"^    (\w+) ", top, re.M)
    readme = _readme_usage()
    assert "--version" in top and "safetycatch --version" in _readme_cli_block()
    assert set(readme) == set(commands), "README's CLI block and `safetycatch --help` list different commands"
    for command in commands:
        usage = _help(capsys, command).split("\n\n", 1)[0]
        options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage)) - COMMON_OPTIONS
        assert readme[command] - COMMON_OPTIONS == options, command
    text = (ROOT / "README.md").read_text()
    assert "Every command takes `-v` / `--verbose`" in text and "`--profile P`" in text


def test_the_how_it_works_table_names_real_modules_and_every_top_level_one():
    """Each row of README's "How it works" table names files that exist (``a.py``, ``b.py`` after a
    ``chalicelib/…`` path are its neighbours), and every top-level module of chalicelib/ that decides or talks to
    Slack has a row."""
    section = (ROOT / "README.md").read_text().split("## How it works", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for row in (line for line in section.splitlines() if line.startswith("| `")):
        cell = row.split("|")[1]
        paths = re.findall(r"`([^`]+)`", cell)
        folder = paths[0].rsplit("/", 1)[0] + "/" if "/" in paths[0].rstrip("/") else ""
        for path in paths:
            full = path if "/" in path or not folder else folder + path
            assert (ROOT / full).exists(), f"README names {full}, which does not exist"
            named.add(full)
    for module in ("approvals", "undo", "decisions", "killswitch", "engine", "runtime", "slack", "slack_messages",
                   "slack_routes"):
        assert f"chalicelib/{module}.py" in named, module
