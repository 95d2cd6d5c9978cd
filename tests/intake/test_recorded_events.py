"""Real shapes: a recorded CloudTrail record for every watched event name (tests/events/ and tests/events/recorded/,
their sources in each folder's README), each taken by the bot's rules, understood by the parser and handled on the
event path without error - on an empty account, and on one where the records' resources exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.events.models import EventPattern

from chalicelib.bot.handlers import handle_event
from chalicelib.intake import events
from chalicelib.policy.settings import Settings
from tests.conftest import EVENTS
from tests.intake.event_costs import scenario_functions

RECORDED = EVENTS / "recorded"
CLOUDTRAIL_FILES = sorted(p for folder in (EVENTS, RECORDED) for p in folder.glob("*.json")
                          if json.loads(p.read_text()).get("detail-type") == events.CLOUDTRAIL)
# Records that are meant to be skipped, and why (every other record must parse to a change).
SKIPPED = {"lambda-PutFunctionConcurrency20171031": "the bot's own change",
           "lambda-UpdateFunctionConfiguration20150331v2-AccessDenied": "the call failed (AccessDenied)"}
NOT_DELIVERED = "Slack is not configured"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _watched(record: dict) -> tuple[str, str]:
    return record["source"], events.base_name(record["detail"]["eventName"])


def test_every_watched_event_name_has_a_recorded_record():
    have = {_watched(_load(p)) for p in CLOUDTRAIL_FILES}
    missing = sorted((source, name) for source, names in events.WATCHED.items() for name in names
                     if (source, name) not in have)
    assert not missing, f"no recorded CloudTrail record for: {missing}"


def test_every_recorded_file_is_listed_in_its_folders_readme():
    for folder in (EVENTS, RECORDED):
        readme = (folder / "README.md").read_text()
        unlisted = [p.name for p in folder.glob("*.json") if f"`{p.name}`" not in readme]
        assert not unlisted, f"{folder.name}/README.md does not say where these shapes come from: {unlisted}"


@pytest.mark.parametrize("path", CLOUDTRAIL_FILES, ids=lambda p: p.stem)
def test_each_record_is_taken_by_a_rule_and_understood(path):
    record = _load(path)
    parsed = events.parse(record, Settings())
    if path.stem in SKIPPED:
        assert isinstance(parsed, events.Skip) and parsed.reason.startswith(SKIPPED[path.stem])
        return
    matched = [h for h, p in events.CLOUDTRAIL_RULES.items()
               if EventPattern.load(json.dumps(p)).matches_event(record)]
    assert len(matched) == 1, f"{path.name}: taken by {matched}"
    assert isinstance(parsed, events.Change), f"{path.name}: {parsed.reason}"
    assert parsed.function is not None or parsed.lookup, f"{path.name}: names nothing to re-evaluate"


@pytest.mark.parametrize("path", CLOUDTRAIL_FILES, ids=lambda p: p.stem)
def test_each_record_is_handled_without_error_on_an_empty_account(aws, runtime, path):
    report = handle_event(_load(path), runtime=runtime)
    assert set(report) >= {"event_id", "event_name", "skipped", "findings", "errors"}
    assert report["findings"] == [] and report["skipped"], report
    assert [e for e in report["errors"] if NOT_DELIVERED not in e] == [], report["errors"]


@pytest.mark.parametrize("path", CLOUDTRAIL_FILES, ids=lambda p: p.stem)
def test_each_record_is_handled_without_error_where_its_function_exists(aws, runtime, path):
    """The scenario's function (``orders-api``, or ``example-fn`` in the older records) exists, fronted by an API,
    running as ``orders-api-role``: the records that name it evaluate it, the others find what they concern."""
    scenario_functions(aws)
    report = handle_event(_load(path), runtime=runtime)
    assert [e for e in report["errors"] if NOT_DELIVERED not in e] == [], report["errors"]
    if path.stem not in SKIPPED and report["skipped"] is None:
        assert report["functions"], report
