"""Keep the Lambda zip lean: after ``chalice package``, drop the parts of slack-sdk the bot never imports.

slack-sdk ships Socket Mode, RTM, OAuth, SCIM, Audit Logs, asyncio clients and a legacy ``slack`` shim
package; the bot needs the Web API client, request signatures, Block Kit models, retry handlers and the
webhook client. What stays is the import closure (``modulefinder`` over the zip's own files, so imports
inside functions count too) of:

* every ``slack_sdk`` module that app.py or chalicelib/ imports (anywhere, found with ``ast``), and
* ``BASELINE``: the slack-sdk parts the design commits the bot to.

Everything else of slack-sdk goes, with its ``.dist-info`` bookkeeping (its licence stays), and so does any
``__pycache__`` Chalice picked up from the work tree (a test run leaves bytecode there; its timestamps
never match the zip's, so Lambda would recompile anyway). The zip is rewritten at the highest compression
level.

Example:
    report = slim_zip(Path("build/package/deployment.zip"), [Path("app.py")])
    report.after < report.before
    # -> True
"""

from __future__ import annotations

import ast
import modulefinder
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "slack_sdk"
LEGACY_SHIM = "slack"
BASELINE = ("slack_sdk.web.client", "slack_sdk.signature", "slack_sdk.models.blocks",
            "slack_sdk.http_retry.builtin_handlers", "slack_sdk.webhook.client", "slack_sdk.errors")


@dataclass
class SlimReport:
    before: int
    after: int
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def imported_modules(paths: Iterable[Path], package: str = PACKAGE) -> set[str]:
    """Every module of ``package`` the code imports, at module level or inside functions.

    Example:
        >>> imported_modules([Path("chalicelib/decide/engine.py")])  # a module that does not use Slack
        set()
    """
    found: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == package:
                found.add(str(node.module))
                found.update(f"{node.module}.{a.name}" for a in node.names)  # may name submodules
    return found


def closure(root: Path, entries: Iterable[str], package: str = PACKAGE) -> set[str]:
    """Files (relative to ``root``) of every ``package`` module the entries import, transitively."""
    finder = modulefinder.ModuleFinder(path=[str(root)])
    for entry in sorted(set(entries)):
        try:
            finder.import_hook(entry)
        except ImportError:
            continue  # a name imported from a module, not a submodule
    files = set()
    for name, module in finder.modules.items():
        path = getattr(module, "__file__", None)
        if name.split(".")[0] == package and path:
            files.add(Path(path).resolve().relative_to(root.resolve()).as_posix())
    return files


def _dropped(name: str, keep: set[str], package: str) -> bool:
    if "__pycache__/" in name or name.endswith((".pyc", ".pyo")):
        return True  # Chalice zips whatever bytecode a test run left: stale, and Lambda cannot use it
    top = name.split("/", 1)[0]
    if top == LEGACY_SHIM:
        return True
    if top.startswith(f"{package}-") and top.endswith(".dist-info"):
        return "/licenses/" not in name and not name.endswith(("/METADATA", "/LICENSE"))
    if top == package:
        return name not in keep
    return False


def slim_zip(zip_path: Path, sources: Iterable[Path], package: str = PACKAGE) -> SlimReport:
    """Rewrite ``zip_path`` without the unused parts of ``package``; returns sizes and what changed."""
    before = zip_path.stat().st_size
    with zipfile.ZipFile(zip_path) as original, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        original.extractall(root)
        keep = closure(root, {*BASELINE, *imported_modules(sources, package)}, package)
        rewritten = zip_path.with_suffix(".slim.zip")
        report = SlimReport(before, 0)
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
            for info in original.infolist():
                if _dropped(info.filename, keep, package):
                    report.removed.append(info.filename)
                    continue
                report.kept.append(info.filename)
                out.writestr(info, original.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    rewritten.replace(zip_path)
    report.after = zip_path.stat().st_size
    return report
