"""Build steps behind ``make package``: compile the policies, then ``chalice package``.

``python -m cli.build compile``  validate policies/ and write chalicelib/compiled_policies.json
``python -m cli.build package``  compile, then ``chalice package`` into build/package (zip + template)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chalicelib.settings import COMPILED_PATH, PolicyError, read_dir, validate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "package"


def compile_policies(policies_dir: Path = ROOT / "policies", target: Path = COMPILED_PATH) -> dict:
    """Validate the YAML policies and write them as JSON for the Lambda package.

    Example:
        >>> sorted(compile_policies()["policies"])[:1]
        ['apigw-timeout']
    """
    policy_set = validate(read_dir(policies_dir))
    data = policy_set.to_json()
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def package(out: Path = OUT, stage: str = "dev") -> Path:
    """Compile policies and run ``chalice package``; returns the deployment zip's path.

    Example:
        >>> package(Path("build/package")).name
        'deployment.zip'
    """
    compile_policies()
    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    try:
        subprocess.run([str(chalice), "package", "--stage", stage, str(out)], cwd=ROOT, check=True, env=env)
    finally:
        COMPILED_PATH.unlink(missing_ok=True)  # only the package carries it; a checkout reads policies/
    return out / "deployment.zip"


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["compile"]:
            data = compile_policies()
            print(f"compiled {len(data['policies'])} policies into {COMPILED_PATH.relative_to(ROOT)}")
        elif argv[:1] == ["package"]:
            zip_path = package()
            print(f"{zip_path.relative_to(ROOT)}: {zip_path.stat().st_size:,} bytes")
        else:
            print("usage: python -m cli.build compile|package", file=sys.stderr)
            return 2
    except PolicyError as exc:
        print(f"safetycatch: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"safetycatch: chalice package failed (exit {exc.returncode})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
