"""The embedded AWS (safetycatch.local.sandbox.moto_server): each server is a fresh, empty account, whatever an
earlier server in the same process made (moto keeps its state per process; the demo, selftest and the wheel's scan
each build ``orders-api`` and friends in one)."""

from __future__ import annotations

import boto3

from safetycatch.local.sandbox import SandboxAccount, moto_server


def test_each_embedded_aws_starts_empty():
    with moto_server():
        SandboxAccount().function("orders-api", timeout=30)
        assert [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]] == ["orders-api"]
    with moto_server():
        assert boto3.client("lambda").list_functions()["Functions"] == []
        SandboxAccount().function("orders-api", timeout=30)  # no ResourceConflictException: Function already exist
