"""Transient or permanent, inside one event (the rule in chalicelib/core/aws.py): a read that fails transiently raises,
so that Lambda retries and the dead-letter queue catches the rest; a permanent failure is recorded and returns."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ParamValidationError

from chalicelib.bot.handlers import handle_event
from chalicelib.core.aws import is_transient
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.storm import error_response


def _error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetFunction")


@pytest.mark.parametrize(("code", "status"), [
    ("TooManyRequestsException", 429), ("ThrottlingException", 400), ("Throttling", 400),
    ("RequestLimitExceeded", 503), ("ProvisionedThroughputExceededException", 400), ("SlowDown", 503),
    ("ServiceException", 500), ("InternalFailure", 500), ("ServiceUnavailableException", 503),
    ("RequestTimeout", 408), ("SomethingNew", 502), ("SomethingNew", 429),
])
def test_transient_failures(code, status):
    assert is_transient(_error(code, status))


@pytest.mark.parametrize(("code", "status"), [
    ("AccessDeniedException", 403), ("AccessDenied", 403), ("UnauthorizedOperation", 403),
    ("ResourceNotFoundException", 404), ("NoSuchEntity", 404), ("ValidationException", 400),
    ("InvalidParameterValueException", 400), ("KMSAccessDeniedException", 502),
])
def test_permanent_failures(code, status):
    assert not is_transient(_error(code, status))


def test_no_answer_at_all_is_transient_and_a_bug_is_not_classified_permanent():
    assert is_transient(EndpointConnectionError(endpoint_url="https://lambda.us-east-1.amazonaws.com"))
    assert is_transient(ConnectTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"))
    assert not is_transient(ParamValidationError(report="bad"))
    assert not is_transient(KeyError("x")), "not an AWS failure: the handler lets it raise (Lambda retries)"


class Refusal:
    """Answers one Lambda operation with an AWS error, as it reaches the code once botocore's retries are spent
    (a ``before-call`` hook: the request is never sent). ``lift()`` lets the calls through again."""

    def __init__(self, runtime, operation: str, code: str, status: int) -> None:
        self.code, self.status, self.active, self.seen = code, status, True, 0
        runtime.session.events.register(f"before-call.lambda.{operation}", self)

    def __call__(self, **_):
        if not self.active:
            return None
        self.seen += 1
        return error_response(self.code, self.status, "refused in test")

    def lift(self) -> None:
        self.active = False


@pytest.fixture
def orders(aws):
    aws.rest_api(aws.function("orders-api", timeout=30), path="orders")
    return api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api", "timeout": 30})


@pytest.mark.parametrize("operation", ["GetFunction", "GetPolicy"])
def test_a_throttled_read_raises_so_lambda_retries_and_the_retry_acts(orders, runtime, aws, operation):
    """The function's own read, or a facet a check needs (its resource policy, to find the API in front): either
    way the event fails rather than being decided on half the facts; idempotency lets the retry act."""
    refusal = Refusal(runtime, operation, "TooManyRequestsException", 429)
    with pytest.raises(ClientError) as raised:
        handle_event(orders, runtime=runtime)
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException" and refusal.seen
    assert aws.client("lambda").get_function(FunctionName="orders-api")["Configuration"]["Timeout"] == 30
    refusal.lift()
    retry = handle_event(orders, runtime=runtime)  # Lambda's retry: the idempotency record was released
    assert retry["findings"][0]["outcome"] == "fixed" and not retry.get("duplicate")


def test_a_5xx_raises_too(orders, runtime):
    Refusal(runtime, "GetFunction", "ServiceException", 500)
    with pytest.raises(ClientError):
        handle_event(orders, runtime=runtime)


def test_access_denied_on_the_function_is_recorded_and_returns(orders, runtime, aws, captured_log):
    refusal = Refusal(runtime, "GetFunction", "AccessDeniedException", 403)
    report = handle_event(orders, runtime=runtime)
    assert report["skipped"] == "cannot read what changed: GetFunction failed (AccessDeniedException)"
    assert report["errors"] == ["GetFunction: AccessDeniedException"]
    assert "permanent AWS failure: recorded, not retried" in captured_log.getvalue()
    refusal.lift()
    again = handle_event(orders, runtime=runtime)  # a redelivery: the decision stands, nothing is read again
    assert again["duplicate"] is True and again["skipped"] == report["skipped"] and refusal.seen == 1


def test_access_denied_on_one_facet_is_recorded_and_the_rest_decided(orders, runtime, aws):
    """A tag change re-evaluates every policy: the mappings cannot be read (recorded), the timeout is still fixed."""
    Refusal(runtime, "ListEventSourceMappings", "AccessDeniedException", 403)
    tag = api_call("TagResource20170331v2", {"resource": "arn:aws:lambda:us-east-1:123456789012:function:orders-api",
                                             "tags": {"team": "orders"}})
    report = handle_event(tag, runtime=runtime)
    assert report["skipped"] is None
    assert [e for e in report["errors"] if "mappings" in e] == [
        "could not read mappings: AccessDeniedException: refused in test; its checks did not run on 1 function: "
        "orders-api"]
    assert [(f["policy"], f["outcome"]) for f in report["findings"]] == [("apigw-timeout", "fixed")]


def test_a_function_that_is_gone_is_recorded_and_returns(runtime, aws):
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "deleted-fn"}),
                          runtime=runtime)
    assert report["skipped"] == "the function no longer exists" and report["findings"] == []


def test_a_sweep_records_transient_failures_and_carries_on(aws, runtime):
    """A sweep is not one event: it records what it could not read (the next sweep reads again)."""
    aws.rest_api(aws.function("orders-api", timeout=30), path="orders")
    Refusal(runtime, "ListEventSourceMappings", "TooManyRequestsException", 429)
    report = runtime.engine("123456789012", "us-east-1").sweep(act=False)
    assert any(e.startswith("could not read mappings: TooManyRequestsException") for e in report.errors)
    assert [d.finding.policy for d in report.decisions] == ["apigw-timeout"]


def test_the_deployed_handler_fails_the_invocation_so_lambda_retries(orders, runtime):
    """Through app.py and its Powertools middleware: the failure reaches Lambda (a swallowed one would be lost)."""
    from chalice.test import Client

    from app import app
    from chalicelib.bot import handlers

    Refusal(runtime, "GetFunction", "TooManyRequestsException", 429)
    handlers.reset_runtime(runtime)
    with Client(app) as client, pytest.raises(ClientError, match="TooManyRequestsException"):
        client.lambda_.invoke("on_config_change", orders)
