"""Hostile input, property-based: 10,000 generated and mutated events through the real handler, and random
policy documents through validation. No exception escapes; nothing is written."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.events import APIGATEWAY_EVENTS, LAMBDA_EVENTS
from chalicelib.handlers import handle_event
from chalicelib.settings import PolicyError, read_dir, validate
from tests.conftest import POLICIES

EVENTS_DIR = Path(__file__).resolve().parent / "events"
FIXTURES = [json.loads(p.read_text()) for p in sorted(EVENTS_DIR.glob("*.json"))]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.just("x" * 100_000), st.text(alphabet="\u202e\u0000\ud7ff\U0001f4a5é", max_size=20),
                    st.sampled_from(["example-fn", "arn:aws:lambda:us-east-1:123456789012:function:example-fn",
                                     "123456789012:function:example-fn:live", "../../x", "*", "arn:aws:iam::*:role/x"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                           max_leaves=12)
names = st.sampled_from([*LAMBDA_EVENTS, *APIGATEWAY_EVENTS, "UpdateFunctionConfiguration20150331v2",
                         "TagResource20170331v2", "DeleteFunction20150331", "PutRolePolicy", ""])


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, prefix + (index,)))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(FIXTURES)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(event)
        path = draw(st.sampled_from(candidates))
        if not path:
            return draw(json_values)
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return event


generated_events = st.fixed_dictionaries(
    {"detail-type": st.sampled_from(["AWS API Call via CloudTrail", "CloudWatch Alarm State Change",
                                     "AWS Health Event", "Scheduled Event"])},
    optional={"source": st.sampled_from(["aws.lambda", "aws.apigateway", "aws.s3", "aws.ec2", "aws.iam",
                                         "aws.health", "aws.cloudwatch", "evil"]),
              "account": st.sampled_from(["123456789012", "210987654321", "", "12"]),
              "region": st.sampled_from(["us-east-1", "eu-west-1", "mars-1"]),
              "id": st.text(max_size=40),
              "detail": st.fixed_dictionaries({"eventName": names}, optional={
                  "eventID": st.text(max_size=40), "requestParameters": json_values,
                  "responseElements": json_values, "userIdentity": json_values, "errorCode": json_values,
                  "readOnly": json_values})})


@pytest.fixture
def quiet_estate(aws, make_runtime, calls, tmp_path_factory):
    """example-fn exists and is compliant: any event about it re-reads it and finds nothing to change.

    A mutation can leave a Health notice well-formed evidence of a loop in example-fn, and acting on
    that is the kill-switch's job (tested in test_killswitch.py); here example-fn is in ``never_kill`` so
    the only question is whether anything hostile gets through. (Alarm evidence is re-read: no alarm
    exists here, so a forged alarm event kills nothing, never_kill or not.)
    """
    policies = tmp_path_factory.mktemp("policies")
    for source in POLICIES.glob("*.yaml"):
        (policies / source.name).write_text(source.read_text())
    settings = policies / "settings.yaml"
    settings.write_text(settings.read_text().replace("never_kill: []", 'never_kill: ["example-fn"]'))
    runtime = make_runtime(policies=policies)
    aws.function("example-fn", timeout=10)
    runtime.bot_account()
    calls.clear()
    return runtime


HOSTILE = settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.slow
@HOSTILE
@given(event=mutated_fixtures())
def test_mutated_recorded_events_never_raise_or_write(quiet_estate, calls, event):
    report = handle_event(event, runtime=quiet_estate)
    assert isinstance(report, dict) and ("skipped" in report)
    json.dumps(report)
    assert calls.writes == []


@pytest.mark.slow
@HOSTILE
@given(event=st.one_of(generated_events, json_values))
def test_generated_events_never_raise_or_write(quiet_estate, calls, event):
    report = handle_event(event, runtime=quiet_estate)
    assert isinstance(report, dict)
    json.dumps(report)
    assert calls.writes == []


policy_docs = st.dictionaries(
    st.sampled_from(["apigw-timeout.yaml", "reserved-concurrency.yaml", "batch-partial-failure.yaml",
                     "settings.yaml", "evil.yaml"]),
    st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "mode": json_values, "severity": json_values, "params": st.one_of(json_values, st.dictionaries(
            st.sampled_from(["buffer_seconds", "min", "headroom", "tag_key", "lookback_days", "x"]), json_values)),
        "exempt": json_values, "approvers": json_values, "approval_ttl_hours": json_values,
        "self_role_patterns": json_values, "max_changes_per_hour": json_values})))


@settings(max_examples=2000, deadline=None, database=None)
@given(documents=policy_docs)
def test_policy_documents_are_valid_or_rejected_with_one_line(documents):
    try:
        policy_set = validate(documents)
    except PolicyError as exc:
        assert "\n" not in str(exc) and str(exc).split(":", 1)[0].endswith(".yaml")
        return
    for cfg in policy_set.policies.values():
        assert cfg.mode in ("auto", "approve", "notify", "off")


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=300))
def test_policy_yaml_text_is_valid_or_rejected_with_one_line(tmp_path_factory, text):
    directory = tmp_path_factory.mktemp("policies")
    (directory / "apigw-timeout.yaml").write_text(text, encoding="utf-8")
    try:
        validate(read_dir(directory))
    except PolicyError as exc:
        assert "\n" not in str(exc)
