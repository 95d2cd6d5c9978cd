"""The shape of the deployed code, read with ``ast`` (nothing is imported): one concern per module.

* no import cycle among app.py and chalicelib/, counting the imports inside functions (only ``if
  TYPE_CHECKING:`` blocks, which never run, are left out);
* decisions know nothing of Slack: no deployed module outside the Slack ones imports a Slack module, except
  the runtime that wires the bot together and app.py that routes to it; and no decision module reaches one
  even through other modules;
* imports flow downward between chalicelib's packages: ``ALLOWED`` is the table of the edges there may be (a
  package to the packages it may import); an import outside it, at run time or for types only, fails with one line
  that names the importing module;
* no function in chalicelib/ is over 50 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_FUNCTION_LINES = 50
# the modules that decide (approve, deny, undo, restore, kill, fix, evaluate) and what they rest on
DECISION_MODULES = ("chalicelib.people.approvals", "chalicelib.people.undo", "chalicelib.people.decisions",
                    "chalicelib.killswitch.kill", "chalicelib.decide.engine", "chalicelib.act.fixes",
                    "chalicelib.act.gateway", "chalicelib.store.state", "chalicelib.act.drift",
                    "chalicelib.killswitch.evidence")
SLACK_WIRING = {"app", "chalicelib.bot.runtime"}  # where the bot is put together: may name the Slack modules


def deployed_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name → file of app.py and every module under chalicelib/ (packages by their ``__init__``)."""
    modules = {"app": root / "app.py"}
    for path in sorted((root / "chalicelib").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs: ``if TYPE_CHECKING:`` bodies (annotations only) left out."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return [node for node in ast.walk(tree) if id(node) not in skipped]


def _imported(module: str, path: Path, node: ast.AST) -> list[str]:
    """The modules one import statement names (a ``from package import module`` names the module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([base] if base else [])])
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the deployed modules it imports, at module level or inside functions."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            names = _imported(module, path, node)
            exact = [n for n in names[:-1] if n in modules] if isinstance(node, ast.ImportFrom) else []
            for name in exact or names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def is_slack(module: str) -> bool:
    """The Slack package (client, messages) and the Slack routes of the wiring."""
    return module == "chalicelib.slack" or module.startswith("chalicelib.slack.") or \
        module.rpartition(".")[2].startswith("slack")


GRAPH = import_graph(deployed_modules())

# chalicelib's packages, bottom first, and what each may import (README "How it works" draws the same tree). A
# package never imports one above it: what it needs from above is handed in (the kill-switch and the organisation
# fan-out take a runtime typed by a Protocol of their own, the engine its notifier and sink).
LAYERS = ("core", "store", "domain", "checks", "policy", "intake", "inventory", "act", "exports", "decide",
          "killswitch", "people", "org", "slack", "bot")
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "store": frozenset({"core"}),
    "domain": frozenset({"core"}),
    "checks": frozenset({"core", "domain"}),  # pure: no reads, no writes, no state
    "policy": frozenset({"core", "checks"}),
    "intake": frozenset({"core", "checks", "policy"}),
    "inventory": frozenset({"core", "store", "domain", "intake"}),  # store: the invoker index the API reader keeps
    "act": frozenset({"core", "domain"}),
    "exports": frozenset({"core", "checks"}),
    "decide": frozenset({"core", "store", "checks", "policy", "intake", "inventory", "act", "exports"}),
    "killswitch": frozenset({"core", "store", "domain", "checks", "policy", "intake", "inventory", "act", "decide"}),
    "people": frozenset({"core", "store", "decide", "act", "killswitch"}),
    "org": frozenset({"core", "store", "policy", "intake", "decide", "killswitch"}),
    "slack": frozenset({"core", "store", "checks", "act", "decide", "people"}),
    "bot": frozenset({"core", "store", "policy", "intake", "inventory", "act", "exports", "decide", "killswitch",
                      "people", "org", "slack"}),
}


def package_of(module: str) -> str:
    """``chalicelib.killswitch.kill`` → ``killswitch``; app.py is ``app``, chalicelib's own ``__init__`` is ``""``."""
    parts = module.split(".")
    return "app" if module == "app" else (parts[1] if len(parts) > 1 else "")


def typed_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the deployed modules it imports inside ``if TYPE_CHECKING:`` (a type is a dependency too)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
        names = {name for block in blocks for stmt in block.body for inner in ast.walk(stmt)
                 for name in _imported(module, path, inner)}
        found = set()
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
        graph[module] = found
    return graph


def upward_imports(modules: dict[str, Path]) -> list[str]:
    """One line per import that ``ALLOWED`` does not list, naming the importing module."""
    runtime, typed = import_graph(modules), typed_imports(modules)
    problems = []
    for module in sorted(modules):
        source = package_of(module)
        for target in sorted(runtime[module] | typed[module]):
            wanted = package_of(target)
            if source in ("app", wanted) or wanted == "":
                continue
            if source == "" or wanted not in ALLOWED.get(source, frozenset()):
                problems.append(f"{module} imports {target}: chalicelib.{source or '__init__'} may not import "
                                f"chalicelib.{wanted} (tests/project/test_structure.py ALLOWED)")
    return problems


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking_blocks(tmp_path):
    package = tmp_path / "chalicelib"
    package.mkdir()
    (tmp_path / "app.py").write_text("from chalicelib import a\n")
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from chalicelib.b import g\n    return g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chalicelib import c\n"
                                  "def g():\n    from . import a\n")
    (package / "c.py").write_text("import chalicelib.b\n")
    graph = import_graph(deployed_modules(tmp_path))
    assert graph["app"] == {"chalicelib.a"}
    assert graph["chalicelib.b"] == {"chalicelib.a"}, "a TYPE_CHECKING import never runs; a relative one does"
    assert cycles(graph) == [["chalicelib.a", "chalicelib.b"]], "a cycle through a function-level import counts"


def test_no_import_cycle_among_the_deployed_modules():
    assert len(GRAPH) > 60 and "chalicelib.checks.base" in GRAPH
    assert cycles(GRAPH) == []


def test_the_allowed_edges_point_down_the_layers_and_name_every_package():
    folders = {p.parent.name for p in (ROOT / "chalicelib").glob("*/__init__.py")}
    assert set(LAYERS) == folders == set(ALLOWED), "a package of chalicelib/ without a row in ALLOWED (or a stale row)"
    for package, targets in ALLOWED.items():
        assert all(LAYERS.index(t) < LAYERS.index(package) for t in targets), f"{package} may import upward"


def test_imports_flow_downward_between_the_packages():
    assert upward_imports(deployed_modules()) == []


def test_an_upward_import_fails_with_one_line_naming_the_importer(tmp_path):
    for package in ("bot", "killswitch", "org"):
        (tmp_path / "chalicelib" / package).mkdir(parents=True)
        (tmp_path / "chalicelib" / package / "__init__.py").write_text("")
    (tmp_path / "chalicelib" / "__init__.py").write_text("")
    (tmp_path / "app.py").write_text("from chalicelib.bot import runtime\n")
    (tmp_path / "chalicelib" / "bot" / "runtime.py").write_text("from chalicelib.killswitch import kill\n")
    kill = tmp_path / "chalicelib" / "killswitch" / "kill.py"
    kill.write_text("def f():\n    from chalicelib.bot import runtime\n")
    (tmp_path / "chalicelib" / "org" / "scopes.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chalicelib.bot.runtime import Runtime\n")
    assert upward_imports(deployed_modules(tmp_path)) == [
        "chalicelib.killswitch.kill imports chalicelib.bot.runtime: chalicelib.killswitch may not import chalicelib.bot"
        " (tests/project/test_structure.py ALLOWED)",
        "chalicelib.org.scopes imports chalicelib.bot.runtime: chalicelib.org may not import chalicelib.bot"
        " (tests/project/test_structure.py ALLOWED)"]


def test_every_package_is_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for top in ("chalicelib", "safetycatch")
               for p in (ROOT / top).rglob("__init__.py")}
    assert listed == folders | {"safetycatch.policies"}


def test_the_check_declarations_are_apart_from_the_registry():
    """Each check imports ``Check`` / ``Param`` from checks/base.py, which imports no check: the package's
    ``__init__`` only collects them."""
    checks = [m for m in GRAPH if m.startswith("chalicelib.checks.") and m != "chalicelib.checks.base"]
    assert checks and all("chalicelib.checks" not in GRAPH[m] for m in checks)
    assert not any(m.startswith("chalicelib.checks") for m in GRAPH["chalicelib.checks.base"])


def test_no_decision_module_knows_slack():
    importers = {m for m, targets in GRAPH.items() if not is_slack(m) and any(map(is_slack, targets))}
    assert importers <= SLACK_WIRING, f"only the wiring may import a Slack module: {sorted(importers)}"
    for module in DECISION_MODULES:
        assert module in GRAPH
        assert not [m for m in reachable(GRAPH, module) if is_slack(m)], f"{module} reaches a Slack module"


def test_the_slack_worker_calls_the_decisions():
    assert "chalicelib.people.decisions" in GRAPH["chalicelib.bot.slack_routes"]
    deciders = {"chalicelib.killswitch.kill", "chalicelib.people.approvals", "chalicelib.people.undo"}
    assert not deciders & GRAPH["chalicelib.bot.slack_routes"]


def function_lengths(root: Path = ROOT) -> list[tuple[int, str]]:
    """(lines, ``file:qualified name``) of every function and method under chalicelib/, longest first."""
    lengths = []
    for path in sorted((root / "chalicelib").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lengths.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(lengths, reverse=True)


def test_no_function_in_chalicelib_is_over_50_lines():
    lengths = function_lengths()
    assert len(lengths) > 500
    assert [f"{name} ({lines} lines)" for lines, name in lengths if lines > MAX_FUNCTION_LINES] == []


@pytest.mark.parametrize("body_lines, over", [(48, False), (49, True)])
def test_the_length_check_counts_the_def_line_and_the_body(tmp_path, body_lines, over):
    (tmp_path / "chalicelib").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    (tmp_path / "chalicelib" / "m.py").write_text(f"def f():\n{body}    return 0\n")
    (lines, name), = function_lengths(tmp_path)
    assert name == "chalicelib/m.py:f" and (lines > MAX_FUNCTION_LINES) is over


def test_no_source_file_is_hidden_from_git_by_an_ignore_pattern():
    """A pattern meant for the build output (``build/``) once hid ``safetycatch/build/__init__.py``: the checkout
    ran, a fresh clone lacked the package. No .py file under the code or the tests may be ignored."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "*.py"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert [p for p in ignored if "__pycache__" not in p and not p.startswith((".venv/", "mutants/"))] == []
