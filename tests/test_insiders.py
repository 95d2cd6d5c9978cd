"""Insiders cannot steer the bot: attacks by people with ordinary permissions (deploying, tagging, CloudWatch,
a member account's events), each performed through the real handlers on moto. Issue 11."""

from __future__ import annotations

from chalicelib.handlers import handle_event
from cli.cloudtrail import api_call

ACCOUNT, MEMBER = "123456789012", "210987654321"


def _arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:us-east-1:{account}:function:{name}"


# -- 4. an event acts only in its own account -------------------------------------------------------------


def test_an_event_naming_another_accounts_function_changes_nothing(aws, runtime, calls):
    """Attack: from a member account, put an event on the bus whose request names a function of another account
    by full ARN; the bot used to act on that account's function (assuming into it when it is a member)."""
    arn = aws.function("orders-api", timeout=30)
    aws.rest_api(arn, path="orders")
    for envelope, named in ((MEMBER, arn), (ACCOUNT, _arn("orders-api", MEMBER))):
        calls.clear()
        event = api_call("UpdateFunctionConfiguration20150331v2", {"functionName": named, "timeout": 30},
                         account=envelope)
        report = handle_event(event, runtime=runtime)
        assert report["findings"] == [] and report["skipped"] == (
            f"the event from account {envelope} names a function in account {named.split(':')[4]}: not acting")
        assert calls.writes == [] and not [c for c in calls.calls if c.startswith("sts.AssumeRole")]
    assert aws.client("lambda").get_function(FunctionName="orders-api")["Configuration"]["Timeout"] == 30


def test_evidence_from_one_account_never_kills_in_another(aws, runtime, calls):
    """Attack: a loop notice delivered in a member account names a function of the bot's account by ARN."""
    from cli.evidence import health_event

    aws.function("orders-api", tags={"safetycatch:kill-switch": "true"})
    calls.clear()
    report = handle_event(health_event([_arn("orders-api")], account=MEMBER), runtime=runtime)
    assert report["findings"] == [] and "not acting" in report["skipped"]
    assert calls.writes == []
    concurrency = aws.client("lambda").get_function_concurrency(FunctionName="orders-api")
    assert "ReservedConcurrentExecutions" not in concurrency
