"""Item 1 of issue 25: an incomplete scan never passes a gate.

When AWS refuses ListFunctions (403 with credentials that may not list, a proxy's HTML page, a region that does
not exist), ``scan`` prints what it did read and exits 2 with one line naming the call, the region and AWS's
error, whatever ``--fail-on`` says; an AWS error is one line everywhere, never a raw response body.

moto answers every ListFunctions (it enforces no IAM by default), so the refusal is put on the wire for that one
operation by a botocore ``before-send`` hook on the CLI's own session, answering exactly what AWS (or a
corporate proxy in front of it) sends: Lambda's 403 ``AccessDeniedException`` as JSON with the
``x-amzn-ErrorType`` header (Lambda API reference, "Errors"), or an HTML page. Every other call goes to moto.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

import safetycatch.scan
from safetycatch.local.sandbox import member_sandbox
from tests.world.cli_helpers import run

DENIED = (403, {"x-amzn-ErrorType": "AccessDeniedException", "Content-Type": "application/json"},
          json.dumps({"Message": "User: arn:aws:sts::123456789012:assumed-role/ci/gha is not authorized to perform: "
                                 "lambda:ListFunctions on resource: * because no identity-based policy allows the "
                                 "lambda:ListFunctions action"}).encode())
HTML = (403, {"Content-Type": "text/html"},
        b"<html><body><h1>403 Forbidden</h1>\n<p>Request forbidden by administrative rules.</p></body></html>")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def refuse_list_functions(monkeypatch: pytest.MonkeyPatch, answer: Any, account: str | None = None) -> None:
    """Every ListFunctions the CLI sends gets ``answer`` ((status, headers, body), or an exception to raise):
    in the bot's own account, or only in member ``account`` (through the session its role gives)."""
    original = safetycatch.scan.runtime_for

    def hook(request: Any, **_: Any) -> Any:
        if isinstance(answer, Exception):
            raise answer
        status, headers, body = answer
        return AWSResponse(request.url, status, headers, _Raw(body))

    def runtime_for(args: Any, mode: str | None = None) -> Any:
        runtime = original(args, mode)
        if account is None:
            runtime.session.events.register("before-send.lambda.ListFunctions", hook)
            return runtime
        member_session = runtime.member_session

        def refused_member(name: str) -> Any:
            session = member_session(name)
            if name == account:
                session.events.register_first("before-send.lambda.ListFunctions", hook, unique_id="refuse")
            return session

        runtime.member_session = refused_member
        return runtime

    monkeypatch.setattr(safetycatch.scan, "runtime_for", runtime_for)


def _one_refusal(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.startswith("safetycatch: ")]
    assert "Traceback" not in err and "<" not in err, err
    return lines


def test_a_refused_list_functions_fails_the_gate_with_one_line(aws, capsys, monkeypatch):
    aws.function("orders-api", timeout=30)
    refuse_list_functions(monkeypatch, DENIED)
    code, out, err = run(capsys, "scan", "--fail-on", "low")
    assert code == 2
    (line,) = _one_refusal(err)
    assert line.startswith("safetycatch: AWS refused ListFunctions in us-east-1: AccessDeniedException: User: ")
    assert "scan incomplete" in line


def test_a_proxy_page_is_one_line_without_its_markup(aws, capsys, monkeypatch):
    refuse_list_functions(monkeypatch, HTML)
    code, out, err = run(capsys, "scan", "--fail-on", "critical", "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert data["complete"] is False and data["scopes"][0]["complete"] is False
    (line,) = _one_refusal(err)
    assert "AWS refused ListFunctions in us-east-1: 403: 403 Forbidden Request forbidden" in line


def test_a_region_that_cannot_be_reached_fails_the_gate(aws, capsys, monkeypatch):
    refuse_list_functions(monkeypatch, EndpointConnectionError(
        endpoint_url="https://lambda.xx-fake-1.amazonaws.com/2015-03-31/functions"))
    code, _, err = run(capsys, "scan", "--region", "us-west-2")
    assert code == 2
    (line,) = _one_refusal(err)
    assert "could not reach AWS in us-west-2: Could not connect to the endpoint URL" in line


def test_a_complete_scan_still_passes(aws, capsys, monkeypatch):
    aws.function("orders-api", timeout=3)
    code, out, err = run(capsys, "scan", "--fail-on", "critical", "--format", "json")
    assert code == 0 and json.loads(out)["complete"] is True


def test_all_accounts_fails_when_a_member_cannot_be_listed(aws, capsys, monkeypatch):
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(AccountName="payments", Email="p@example.com")["CreateAccountStatus"]["AccountId"]
    member_sandbox(member, "us-east-1").function("payments-fn")
    aws.function("orders-api", timeout=3)
    refuse_list_functions(monkeypatch, DENIED, account=member)
    code, out, err = run(capsys, "scan", "--all-accounts", "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert {s["account"]: s["complete"] for s in data["scopes"]} == {"123456789012": True, member: False}
    (line,) = _one_refusal(err)
    assert f"AWS refused ListFunctions in {member}/us-east-1: AccessDeniedException" in line
