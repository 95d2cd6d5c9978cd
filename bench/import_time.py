"""How long the handler module takes to import in a fresh interpreter (the cold-start share the bot owns).

``make bench`` calls :func:`report`; run alone: ``python bench/import_time.py [--runs N] [--zip PATH]``.

Two figures, each the median of ``runs`` fresh interpreters:

* ``source tree``: ``import app`` from the work tree (bytecode cached, as on a developer machine);
* ``lambda zip``: ``import app`` from the extracted deployment zip with bytecode writing off, as in Lambda,
  where /var/task is read-only and the zip carries no .pyc (every cold start compiles the sources).
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
PROBE = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"


def import_time(runs: int = 7, cwd: Path = ROOT, no_bytecode: bool = False) -> dict[str, Any]:
    """Median / min / max milliseconds of ``import app`` over ``runs`` fresh interpreters in ``cwd``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA_", "SAFETYCATCH_"))}
    env.update(PYTHONPATH=str(cwd), AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True,
                             check=True)
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


def report(runs: int = 7, zip_path: Path = ZIP) -> list[str]:
    """Printable lines for ``make bench``."""
    tree = import_time(runs)
    lines = [f"import app (source tree, median of {runs}): {tree['median_ms']:.0f} ms "
             f"(min {tree['min_ms']:.0f}, max {tree['max_ms']:.0f})"]
    packaged = zip_import_time(zip_path, runs)
    if packaged:
        lines.append(f"import app (lambda zip, {packaged['zip_bytes']:,} bytes, no .pyc, median of {runs}): "
                     f"{packaged['median_ms']:.0f} ms (min {packaged['min_ms']:.0f}, max {packaged['max_ms']:.0f})")
    else:
        lines.append("import app (lambda zip): run `make package` first")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--zip", type=Path, default=ZIP)
    args = parser.parse_args()
    for line in report(args.runs, args.zip):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
