"""Event names per source: each rule branch names its own source's CloudTrail events, and the watched names and the
checks' declared triggers are one set (a trigger without a rule, or a rule without a trigger, fails here)."""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

import app
from chalicelib.checks import EVERY_POLICY, REGISTRY
from chalicelib.domain.event_patterns import may_match
from chalicelib.intake import events
from safetycatch.build import member_template
from safetycatch.local.cloudtrail import api_call

SUFFIX = {"aws.lambda": "20150331v2"}


def _matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching, as moto implements it (``$or`` included), and the bot's own conservative reader."""
    moto = EventPattern.load(json.dumps(pattern)).matches_event(event)
    assert may_match(pattern, event) == moto, "chalicelib.domain.event_patterns and moto disagree on a full event"
    return bool(moto)


def _bot_takes(event: dict) -> bool:
    return any(_matches(p, event) for p in events.CLOUDTRAIL_RULES.values())


def _declared() -> set[str]:
    """Every event name a check declares (``UpdateFunctionConfiguration:timeout`` counts as its event)."""
    return {t.split(":", 1)[0] for check in REGISTRY.values() for t in check.triggers}


def test_every_trigger_a_check_declares_is_watched_by_a_rule():
    watched = {name for names in events.WATCHED.values() for name in names}
    missing = sorted(_declared() - watched)
    assert not missing, f"checks declare triggers no rule watches: {missing}"


def test_every_watched_name_is_a_declared_trigger_of_some_check():
    declared = _declared() | EVERY_POLICY
    for source, names in events.WATCHED.items():
        orphans = sorted(set(names) - declared)
        assert not orphans, f"{source} watches names no check declares (wakes the bot for nothing): {orphans}"


def test_a_dependency_change_evaluates_exactly_the_checks_that_declare_it():
    for source in events.DEPENDENCY_SOURCES:
        for name in events.WATCHED[source]:
            expected = tuple(c.id for c in REGISTRY.values() if name in c.triggers)
            assert events.dependency_policies(name) == expected and expected, (source, name)


def test_no_event_name_is_watched_under_two_sources():
    seen: dict[str, str] = {}
    for source, names in events.WATCHED.items():
        for name in names:
            assert name not in seen, f"{name} is watched under {seen[name]} and {source}: a trigger would be ambiguous"
            seen[name] = source


@pytest.mark.parametrize("source", sorted(events.WATCHED))
def test_a_source_wakes_the_bot_only_with_its_own_names(source):
    own = set(events.WATCHED[source])
    others = sorted({n for s, names in events.WATCHED.items() if s != source for n in names} - own)
    for name in sorted(own):
        event = api_call(name + SUFFIX.get(source, ""), {}, service=source[4:])
        assert _bot_takes(event), f"{source} {name} is watched but no rule takes it"
    for name in others:
        event = api_call(name + SUFFIX.get(source, ""), {}, service=source[4:])
        assert not _bot_takes(event), f"{source} {name} is another source's name, yet a rule takes it"


def test_api_gateway_tag_changes_neither_wake_the_bot_nor_are_forwarded_by_members():
    """The reported defect: one shared name list let API Gateway's TagResource / UntagResource through."""
    member = [pattern for _, pattern in member_template.forwarding_rules().values()]
    for name in ("TagResource", "UntagResource"):
        gateway = api_call(name, {"resourceArn": "arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5"},
                           service="apigateway")
        assert not _matches(app.CONFIG_CHANGES, gateway) and not _matches(app.DEPENDENCY_CHANGES, gateway)
        assert not any(_matches(p, gateway) for p in member), f"members forward API Gateway {name}"
        function = api_call(f"{name}20170331v2", {"resource": "arn:aws:lambda:us-east-1:123456789012:function:f"})
        assert _matches(app.CONFIG_CHANGES, function), f"Lambda {name} must still be watched"


def test_each_rule_branch_names_one_source():
    for handler, pattern in events.CLOUDTRAIL_RULES.items():
        branches = pattern.get("$or", [pattern])
        assert sorted(s for b in branches for s in b["source"]) == sorted(
            events.CONFIG_SOURCES if handler == "on_config_change" else events.DEPENDENCY_SOURCES)
        for branch in branches:
            (source,) = branch["source"]
            names = [n["prefix"] if isinstance(n, dict) else n for n in branch["detail"]["eventName"]]
            assert names == list(events.WATCHED[source])
            assert branch["detail"]["errorCode"] == [{"exists": False}]
