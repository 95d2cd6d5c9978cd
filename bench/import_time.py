"""How long the handler module takes to import in a fresh interpreter (the cold-start share the bot owns).

``make bench`` calls :func:`report`; run alone: ``python bench/import_time.py [--runs N] [--zip PATH]``.

Figures, each over ``runs`` fresh interpreters (best, median), in the same run on the same machine:

* ``source tree``: ``import app`` from the work tree (bytecode cached, as on a developer machine), beside
  ``import c7n.handler`` (Cloud Custodian's Lambda entry point, from the bench venv, bytecode cached by pip);
* ``first event``: ``import app`` and the modules the event handlers load on their first event (app.py loads
  them lazily: the figure says what moved from the import to the first invocation);
* ``lambda zip``: ``import app`` from the extracted deployment zip with bytecode writing off, as in Lambda,
  where /var/task is read-only and the zip carries no .pyc (the bytecode of the import closure is ~237 KB
  compressed, over the zip's 400,000-byte budget: it is not shipped, docs in /work/notes/issue-27.md).
  boto3 and Powertools come from this venv, as they come from the runtime and the layer in Lambda.

Example:
    >>> figures = import_time(runs=3)
    >>> figures["median_ms"] > 0
    True
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ZIP = ROOT / "build" / "package" / "deployment.zip"
PROBE = "import time; t = time.perf_counter(); import {module}{then}; print((time.perf_counter() - t) * 1000)"
FIRST_EVENT = "; app._events()"


def import_time(runs: int = 7, cwd: Path = ROOT, no_bytecode: bool = False, module: str = "app", then: str = "",
                python: Path | None = None) -> dict[str, Any]:
    """Median / min / max milliseconds of ``import module`` over ``runs`` fresh interpreters in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA_", "SAFETYCATCH_"))}
    env.update(PYTHONPATH=str(cwd), AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a developer tree and pip's installs have their bytecode
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    probe = PROBE.format(module=module, then=then)
    if not no_bytecode:  # the first run writes the bytecode a developer tree has
        subprocess.run([str(python or sys.executable), "-c", probe], cwd=cwd, env=env, capture_output=True)
    samples = []
    for _ in range(runs):
        out = subprocess.run([str(python or sys.executable), "-c", probe], cwd=cwd, env=env, capture_output=True,
                             text=True, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return {"runs": runs, "median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples)}


def zip_import_time(zip_path: Path = ZIP, runs: int = 7) -> dict[str, Any] | None:
    """:func:`import_time` from the extracted deployment zip, no bytecode (None if the zip is not built)."""
    if not zip_path.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        return {**import_time(runs, Path(tmp), no_bytecode=True), "zip_bytes": zip_path.stat().st_size}


def report(runs: int = 7, zip_path: Path = ZIP, custodian: Path | None = None) -> list[str]:
    """Printable lines for ``make bench`` (``custodian``: the bench venv's python, for ``import c7n.handler``)."""
    tree = import_time(runs)
    lines = [f"import app (source tree, best of {runs}): {tree['min_ms']:.0f} ms (median {tree['median_ms']:.0f}, "
             f"max {tree['max_ms']:.0f})"]
    if custodian:
        theirs = import_time(runs, Path(tempfile.gettempdir()), module="c7n.handler", python=custodian)
        ratio = tree["min_ms"] / theirs["min_ms"]
        lines.append(f"import c7n.handler (Cloud Custodian 0.9.53, best of {runs}): {theirs['min_ms']:.0f} ms "
                     f"(median {theirs['median_ms']:.0f}): import app is {ratio:.2f}x "
                     f"(goal <= 0.5x: {'met' if ratio <= 0.5 else 'NOT met'})")
    first = import_time(runs, then=FIRST_EVENT)
    lines.append(f"import app + the event handlers' modules (loaded on the first event, best of {runs}): "
                 f"{first['min_ms']:.0f} ms (median {first['median_ms']:.0f})")
    packaged = zip_import_time(zip_path, runs)
    if packaged:
        lines.append(f"import app (lambda zip, {packaged['zip_bytes']:,} bytes, no .pyc, best of {runs}): "
                     f"{packaged['min_ms']:.0f} ms (median {packaged['median_ms']:.0f}, max {packaged['max_ms']:.0f})")
    else:
        lines.append("import app (lambda zip): run `make package` first")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--zip", type=Path, default=ZIP)
    parser.add_argument("--custodian", type=Path, help="a python with Cloud Custodian (default: the bench venv's)")
    args = parser.parse_args()
    custodian = args.custodian or (ROOT / "build" / "bench-venv" / "bin" / "python")
    for line in report(args.runs, args.zip, custodian if custodian.exists() else None):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
