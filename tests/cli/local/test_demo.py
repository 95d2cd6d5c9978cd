"""``safetycatch demo`` end to end, piped (stdout is not a terminal): sections numbered once each, tables as whole
lines, and ``--keep`` leaves the demo account running at the endpoint it prints (issue 16.7, 13.3)."""

from __future__ import annotations

import os
import re

import boto3
import pytest

from safetycatch.local.demo import run_demo


@pytest.mark.slow
def test_demo_keep_leaves_its_account_running(capsys):
    seen: dict[str, object] = {}

    def explore() -> None:
        """What a newcomer does in another shell while the demo waits: use the printed endpoint."""
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint)
        seen["endpoint"] = endpoint
        seen["functions"] = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])

    assert run_demo(keep=True, wait=explore) == 0
    out = capsys.readouterr().out
    assert f"endpoint: {seen['endpoint']}" in out.splitlines()
    assert f"export AWS_ENDPOINT_URL={seen['endpoint']}" in out and "export SAFETYCATCH_TABLE=" in out
    assert {"example-fn", "orders-api", "thumbnailer"} & set(seen["functions"])  # type: ignore[arg-type]
    assert len(seen["functions"]) >= 15  # type: ignore[arg-type]
    assert out.rstrip().endswith("demo account stopped")
    assert "selftest passed: the bot fixed it" in out and "cleaned up: yes" in out  # the tour ends proving itself

    numbers = [int(n) for n in re.findall(r"^(\d+)\. .* ─+$", out, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 9  # once each, in order

    # piped, a table row is one line however wide (nothing cut at 80 columns, no broken borders)
    alarm_row = next(line for line in out.splitlines() if line.startswith("uploads-processor  runaway-loop"))
    assert alarm_row.rstrip().endswith("RecursiveInvocationsDropped=True, Minutes=1") and len(alarm_row) > 80
    tour = out.split("\n1. ", 1)[1].split("Approve on Slack", 1)[0]  # the scan, replay and table sections
    assert not re.search(r"^[┏┃┡│└].*[┓┃┩│┘]$", tour, re.M)
