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


def how_it_works_tree(readme: str) -> list[tuple[str, str]]:
    """(folder or file, what it is) of each line of the tree in README's "How it works", sub-folders with their
    parent's path (``├── bot/`` under ``chalicelib/`` is ``chalicelib/bot/``)."""
    section = readme.split("## How it works", 1)[1].split("\n## ", 1)[0]
    block = [b for b in section.split("```")[1::2] if "├── " in b][0]
    rows, parent = [], ""
    for line in block.strip("\n").splitlines():
        nested = line.startswith(("├── ", "└── "))
        name, _, what = line[4:].strip().partition(" ") if nested else line.partition(" ")
        parent = parent if nested else name
        rows.append((parent + name if nested else name, what.strip()))
    return rows


def test_the_how_it_works_tree_is_the_folders_one_line_per_package():
    """README's tree names every package of chalicelib/ and safetycatch/ (and nothing that does not exist), each
    with what it is, chalicelib's listed top to bottom in the order the structure test lets them import."""
    from tests.project.test_structure import LAYERS

    rows = how_it_works_tree((ROOT / "README.md").read_text())
    named = [path for path, _ in rows]
    assert all(what for _, what in rows) and len(named) == len(set(named))
    for path in named:
        assert (ROOT / path).exists(), f"README's tree names {path}, which does not exist"
    packages = {f"{p.parent.relative_to(ROOT).as_posix()}/" for top in ("chalicelib", "safetycatch")
                for p in (ROOT / top).glob("*/__init__.py")}
    assert packages <= set(named), f"README's tree misses {sorted(packages - set(named))}"
    inside = [p.split("/")[1] for p in named if p.startswith("chalicelib/") and p != "chalicelib/"]
    assert inside == list(reversed(LAYERS)), "README lists chalicelib's packages top (bot) to bottom (core)"


def test_the_tree_reader_nests_sub_folders_under_their_parent():
    readme = "## How it works\n\n```\na.py   the map\npkg/   the bot\n├── x/   one\n└── y/   two\n```\n"
    assert how_it_works_tree(readme) == [("a.py", "the map"), ("pkg/", "the bot"), ("pkg/x/", "one"),
                                         ("pkg/y/", "two")]
