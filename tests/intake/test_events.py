"""Event parsing: every recorded shape, every form of FunctionName, every reason to skip. Never raises."""

from __future__ import annotations

import json

import pytest

from chalicelib.core.model import FunctionRef
from chalicelib.intake.events import Change, Skip, base_name, parse
from chalicelib.policy.settings import Settings
from safetycatch.local.cloudtrail import api_call

SETTINGS = Settings()
ORDERS = "arn:aws:lambda:us-east-1:123456789012:function:example-fn"


@pytest.mark.parametrize("name", [
    "lambda-CreateFunction20150331", "lambda-UpdateFunctionConfiguration20150331v2",
    "lambda-UpdateFunctionCode20150331v2", "lambda-DeleteFunctionConcurrency20171031",
    "lambda-CreateEventSourceMapping20150331-sqs", "lambda-UpdateEventSourceMapping20150331",
    "lambda-AddPermission20150331v2-apigateway", "lambda-TagResource20170331v2",
    "lambda-PutProvisionedConcurrencyConfig", "lambda-PutFunctionRecursionConfig",
    "apigateway-PutIntegration", "apigatewayv2-CreateIntegration",
])
def test_recorded_changes_name_orders_api(event, name):
    change = parse(event(name), SETTINGS)
    assert isinstance(change, Change), change
    assert change.function and change.function.arn == ORDERS
    assert change.actor == "arn:aws:iam::123456789012:role/dev-role"
    assert change.event_id == event(name)["detail"]["eventID"]


@pytest.mark.parametrize("raw", [
    "example-fn", ORDERS, "123456789012:function:example-fn", "example-fn:live", f"{ORDERS}:7",
    "123456789012:function:example-fn:$LATEST", f"{ORDERS}:live",
])
def test_every_form_of_function_name(raw):
    change = parse(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": raw, "timeout": 5}), SETTINGS)
    assert isinstance(change, Change) and change.function.arn == ORDERS


def test_partial_arn_keeps_its_account():
    ref = FunctionRef.parse("210987654321:function:x", "123456789012", "eu-west-1")
    assert ref.arn == "arn:aws:lambda:eu-west-1:210987654321:function:x"


@pytest.mark.parametrize("event_name, expected", [
    ("UpdateFunctionConfiguration20150331v2", "UpdateFunctionConfiguration"),
    ("PutProvisionedConcurrencyConfig", "PutProvisionedConcurrencyConfig"),
    ("TagResource20170331v2", "TagResource"), ("CreateFunction20150331", "CreateFunction"),
])
def test_version_suffixes_are_stripped(event_name, expected):
    assert base_name(event_name) == expected


def test_failed_call_is_skipped(event):
    skip = parse(event("lambda-UpdateFunctionConfiguration20150331v2-AccessDenied"), SETTINGS)
    assert isinstance(skip, Skip) and skip.reason == "the call failed (AccessDenied)"


def test_bot_own_change_is_skipped(event):
    skip = parse(event("lambda-PutFunctionConcurrency20171031"), SETTINGS)
    assert isinstance(skip, Skip) and skip.reason.startswith("the bot's own change")


def test_self_role_patterns_are_configurable(event):
    settings = Settings(self_role_patterns=("arn:aws:iam::*:role/dev-*",))
    assert isinstance(parse(event("lambda-UpdateFunctionConfiguration20150331v2"), settings), Skip)
    assert isinstance(parse(event("lambda-PutFunctionConcurrency20171031"), settings), Change)


def test_assumed_role_without_session_issuer_still_matches():
    evt = api_call("PutFunctionConcurrency20171031", {"functionName": "x", "reservedConcurrentExecutions": 0},
                   role="safetycatch-bot", session="run")
    del evt["detail"]["userIdentity"]["sessionContext"]
    assert parse(evt, SETTINGS).reason.startswith("the bot's own change")


def test_read_only_and_unwatched_calls_are_skipped():
    read = api_call("GetFunction20150331v2", {"functionName": "example-fn"})
    read["detail"]["readOnly"] = True
    assert parse(read, SETTINGS).reason == "read-only call"
    other = api_call("DeleteFunction20150331", {"functionName": "example-fn"})
    assert parse(other, SETTINGS).reason.startswith("not a change safetycatch watches")
    url = api_call("DeleteFunctionUrlConfig", {"functionName": "example-fn"})
    assert isinstance(parse(url, SETTINGS), Skip)


def test_mapping_update_by_uuid_only_needs_a_lookup(event):
    evt = event("lambda-UpdateEventSourceMapping20150331")
    evt["detail"]["responseElements"] = None
    change = parse(evt, SETTINGS)
    assert change.function is None and change.lookup == ("mapping", "53610531-7abb-4365-a8b0-d675911bc925")


def test_rest_update_integration_needs_a_lookup():
    evt = api_call("UpdateIntegration", {"restApiId": "k7q2x9m4ld", "resourceId": "x3b8pq", "httpMethod": "GET",
                                         "patchOperations": [{"op": "replace", "path": "/timeoutInMillis"}]},
                   service="apigateway")
    assert parse(evt, SETTINGS).lookup == ("rest-integration", "k7q2x9m4ld", "x3b8pq", "GET")


def test_http_update_integration_needs_a_lookup():
    evt = api_call("UpdateIntegration", {"apiId": "r9w3tz6k1c", "integrationId": "p4k8d2m", "timeoutInMillis": 5000},
                   service="apigateway")
    assert parse(evt, SETTINGS).lookup == ("http-integration", "r9w3tz6k1c", "p4k8d2m")


def test_integration_response_changes_are_looked_up_for_sync_error_status():
    evt = api_call("PutIntegrationResponse", {"restApiId": "k7q2x9m4ld", "resourceId": "x3b8pq", "httpMethod": "GET",
                                              "statusCode": "500", "selectionPattern": ".*Error.*"},
                   service="apigateway")
    change = parse(evt, SETTINGS)
    assert isinstance(change, Change) and change.lookup == ("rest-integration", "k7q2x9m4ld", "x3b8pq", "GET")


def test_integration_to_something_else_is_skipped(event):
    evt = event("apigateway-PutIntegration")
    for key in ("requestParameters", "responseElements"):
        block = evt["detail"][key]
        (block.get("putIntegrationInput") or block)["uri"] = "https://backend.example.com/orders"
    assert parse(evt, SETTINGS).reason == "the integration does not target a Lambda function"


@pytest.mark.parametrize("evil", [
    None, 0, "x", [], {}, {"detail": None}, {"detail": []}, {"detail": {}, "detail-type": 7},
    {"detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": ["x"]}},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "detail": {"eventName": "TagResource"}},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "account": "123456789012",
     "region": "us-east-1", "detail": {"eventName": "TagResource20170331v2", "requestParameters": {"resource": 5}}},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "account": "123456789012",
     "region": "us-east-1", "detail": {"eventName": "UpdateFunctionCode20150331v2",
                                       "requestParameters": {"functionName": "../../etc/passwd"}}},
    {"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "account": "1" * 5000, "region": "u",
     "detail": {"eventName": "UpdateFunctionCode20150331v2", "userIdentity": {"arn": ["x"]}}},
])
def test_malformed_events_are_skipped_not_raised(evil):
    assert isinstance(parse(evil, SETTINGS), Skip)


def test_recorded_fixtures_are_valid_json_and_named_as_documented(event):
    evt = event("lambda-UpdateFunctionConfiguration20150331v2")
    assert json.loads(json.dumps(evt))["detail"]["eventName"] == "UpdateFunctionConfiguration20150331v2"
