"""Rebuild the corpus of real templates from SOURCES.json (each file's repository, commit and path).

The corpus holds unmodified SAM / CloudFormation templates from public repositories: AWS SAM's translator test
inputs (aws/serverless-application-model, Apache-2.0) and AWS's serverless patterns (aws-samples/serverless-patterns,
MIT-0). ``tests/cli/templates/test_check_corpus.py`` holds ``safetycatch check`` to no crash and no unreadable file
on them.

Usage (network, not run by the tests):
    python tests/templates/corpus/fetch.py                 # every file from raw.githubusercontent.com
    python tests/templates/corpus/fetch.py --git REPO=DIR  # from a local clone (owner/name=path), at the commit
"""

from __future__ import annotations

import argparse
import json
import subprocess
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--git", action="append", default=[], metavar="OWNER/NAME=DIR")
    args = parser.parse_args()
    clones = dict(item.split("=", 1) for item in args.git)
    for name, source in json.loads((HERE / "SOURCES.json").read_text()).items():
        repo, commit, path = source["repo"], source["commit"], source["path"]
        if repo in clones:
            data = subprocess.check_output(["git", "-C", clones[repo], "show", f"{commit}:{path}"])
        else:
            with urllib.request.urlopen(f"https://raw.githubusercontent.com/{repo}/{commit}/{path}", timeout=30) as r:
                data = r.read()
        (HERE / name).parent.mkdir(parents=True, exist_ok=True)
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
