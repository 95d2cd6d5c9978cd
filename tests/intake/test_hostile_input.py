"""Hostile input, property-based, through the real handler on an account with a function for every footgun:
mutated recorded events (retargeted at every function, fresh ids, other accounts) and generated ones, with the
bot's invariants checked on every example; and random policy documents through validation."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.bot.handlers import handle_event
from chalicelib.intake.events import APIGATEWAY_EVENTS, LAMBDA_EVENTS, dig
from chalicelib.policy.settings import PolicyError, read_dir, validate
from tests.world.fuzz_estate import (
    ACCOUNT,
    EXEMPT,
    FOREIGN,
    NEVER_KILL,
    Baseline,
    Ledger,
    build_estate,
    fuzz_policies,
    write_target,
)

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
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


generated_events = st.fixed_dictionaries(
    {"detail-type": st.sampled_from(["AWS API Call via CloudTrail", "CloudWatch Alarm State Change",
                                     "CloudWatch Alarm Contributor State Change", "AWS Health Event",
                                     "Scheduled Event"])},
    optional={"source": st.sampled_from(["aws.lambda", "aws.apigateway", "aws.s3", "aws.ec2", "aws.iam",
                                         "aws.health", "aws.cloudwatch", "evil"]),
              "account": st.sampled_from(["123456789012", "210987654321", "", "12"]),
              "region": st.sampled_from(["us-east-1", "eu-west-1", "mars-1"]),
              "id": st.text(max_size=40),
              "detail": st.fixed_dictionaries({"eventName": names}, optional={
                  "eventID": st.text(max_size=40), "requestParameters": json_values,
                  "responseElements": json_values, "userIdentity": json_values, "errorCode": json_values,
                  "readOnly": json_values})})


@dataclass
class Fuzz:
    """The estate, the two runtimes (enforce, dry-run) and what the examples did."""

    aws: Any
    enforce: Any
    dry_run: Any
    arns: dict[str, str]
    ledger: Ledger
    baseline: Baseline
    tally: Counter = field(default_factory=Counter)
    now: float = 1_800_000_000.0  # the state table's clock: examples are events minutes apart

    def tick(self) -> None:
        self.now += 301  # past the engine's concurrent-apply claim (moto gives functions no RevisionId)


@pytest.fixture
def fuzz(aws, make_runtime, tmp_path_factory, monkeypatch):
    """An account with a function for every footgun, in enforce mode (and a dry-run twin on the same account)."""
    policies = fuzz_policies(tmp_path_factory.mktemp("policies"))
    enforce, dry_run = make_runtime(policies=policies), make_runtime(mode="dry-run", policies=policies)
    arns = build_estate(aws)
    ledger = Ledger()
    ledger.install(monkeypatch)
    fuzz = Fuzz(aws, enforce, dry_run, arns, ledger, Baseline.read(aws, arns))
    for runtime in (enforce, dry_run):
        runtime.bot_account()
        runtime.store.clock = lambda: fuzz.now
    return fuzz


def _retarget(event: Any, name: str, ids: tuple[str, str], account: str, scope: str) -> Any:
    """The fixture about ``name`` instead of example-fn, with fresh ids (never answered from the idempotency
    cache), and for ``scope`` ``envelope`` / ``all`` another account in the envelope only / everywhere."""
    text = json.dumps(event).replace("example-fn", name)
    if scope == "all":
        text = text.replace(ACCOUNT, account)
    out = json.loads(text)
    out["id"] = ids[0]
    if isinstance(out.get("detail"), dict):
        out["detail"]["eventID"] = ids[1]
        if "eventArn" in out["detail"]:  # a Health notice's idempotency key
            out["detail"]["eventArn"] += "-" + ids[1]
    if scope == "envelope":
        out["account"] = account
    return out


def _mutate(data: st.DataObject, event: Any, count: int) -> Any:
    for _ in range(count):
        path = data.draw(st.sampled_from(paths(event)))
        if not path:
            return data.draw(json_values)
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
    return event


def _check(fuzz: Fuzz, event: Any, report: dict[str, Any], dry_run: bool, calls: Any) -> set[str]:
    """The invariants of one example; returns the functions it changed."""
    assert isinstance(report, dict) and "skipped" in report
    json.dumps(report)
    # the event's own account: the envelope's (CloudTrail's recipientAccountId when the envelope has none)
    envelope = (event["account"] if "account" in event else dig(event, "detail", "recipientAccountId")) \
        if isinstance(event, dict) else None
    writes = fuzz.ledger.writes()
    if dry_run:  # (assuming a member account's role reads credentials, it changes nothing)
        assert all(w[3] for w in writes) and [c for c in calls.writes if c != "sts.AssumeRole"] == [], "dry-run"
        return set()
    touched = set()
    for index, entry in enumerate(fuzz.ledger.entries):
        if entry[0] != "write":
            continue
        _, operation, params, _, account = entry
        target = write_target(fuzz.aws, operation, params, account)
        assert target is not None, (operation, params)
        assert account == envelope == target.account, f"{operation} in {account}, event from {envelope}"
        assert target.name not in (EXEMPT, NEVER_KILL), f"{operation} on {target.name}"
        if operation != "SetAlarmState":  # re-arming an alarm after a failed kill changes no setting
            stored = [e for e in fuzz.ledger.entries[:index] if e[0] == "fix" and e[1] == target.arn]
            assert stored, f"{operation} on {target.name} without its prior stored first"
        touched.add(target.name)
    return touched


def _run(fuzz: Fuzz, calls: Any, event: Any, dry_run: bool) -> None:
    fuzz.ledger.entries.clear()
    calls.clear()
    fuzz.tick()
    report = handle_event(event, runtime=fuzz.dry_run if dry_run else fuzz.enforce)  # nothing may escape
    touched = _check(fuzz, event, report, dry_run, calls)
    fuzz.tally["examples"] += 1
    fuzz.tally["reached the engine"] += bool(report.get("function") and not report.get("skipped"))
    fuzz.tally["with findings"] += bool(report.get("findings"))
    fuzz.tally["wrote"] += bool(touched)
    fuzz.tally["held back (exempt)"] += any(f.get("outcome") == "exempt" for f in report.get("findings", []))
    if touched:
        fuzz.baseline.restore(fuzz.aws, touched)


MUTATED_EXAMPLES, GENERATED_EXAMPLES = 500, 600
# functions with footguns the bot fixes by itself (drawn more often: those are the examples that write)
AUTOMATIC_FIXES = ("orders-api", "payments", "looping", "uploads-processor", EXEMPT, NEVER_KILL)
FIGURES = Path(__file__).resolve().parents[2] / "build"


def _figures(fuzz: Fuzz, name: str) -> dict[str, int]:
    """The tally, also written to build/hostile-input-<name>.json (the figures the closing note reports)."""
    figures = dict(fuzz.tally)
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / f"hostile-input-{name}.json").write_text(json.dumps(figures, indent=1) + "\n")
    return figures


@pytest.mark.slow
def test_mutated_recorded_events_reach_the_engine_and_never_misbehave(fuzz, calls):
    """Every recorded fixture, retargeted at any function of a footgun-laden account, with fresh ids, sometimes
    from another account, then mutated 0-3 times; one in five in dry-run. On every example: nothing escapes, no
    write on an exempt or never_kill function or outside the event's account, every write after its prior
    was stored, and dry-run writes nothing."""

    @settings(max_examples=MUTATED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def example(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([*AUTOMATIC_FIXES * 2, *sorted(fuzz.arns)]))
        scope = data.draw(st.sampled_from(["own"] * 6 + ["envelope", "all"]))
        ids = (str(uuid.uuid4()), str(uuid.uuid4()))  # fresh on every run: never a duplicate delivery
        event = _retarget(copy.deepcopy(data.draw(st.sampled_from(FIXTURES))), name, ids, FOREIGN, scope)
        event = _mutate(data, event, data.draw(st.sampled_from([0, 0, 1, 1, 2, 3])))
        _run(fuzz, calls, event, dry_run=data.draw(st.integers(0, 4)) == 4)  # the simplest example: enforce

    example()
    figures = _figures(fuzz, "mutated")
    assert figures["examples"] == MUTATED_EXAMPLES
    assert figures["reached the engine"] >= MUTATED_EXAMPLES * 3 // 10, figures
    assert figures["wrote"] >= MUTATED_EXAMPLES * 3 // 100, figures
    assert figures["held back (exempt)"] >= 5, figures


@pytest.mark.slow
def test_generated_events_never_misbehave(fuzz, calls):
    """Events built from scratch (any detail-type, source, account, names, shapes) and raw JSON values."""

    @settings(max_examples=GENERATED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(event=st.one_of(generated_events, json_values), dry_run=st.booleans())
    def example(event: Any, dry_run: bool) -> None:
        _run(fuzz, calls, event, dry_run)

    example()
    assert _figures(fuzz, "generated")["examples"] == GENERATED_EXAMPLES


policy_docs = st.dictionaries(
    st.sampled_from(["apigw-timeout.yaml", "reserved-concurrency.yaml", "batch-partial-failure.yaml",
                     "settings.yaml", "evil.yaml"]),
    st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "mode": json_values, "severity": json_values, "params": st.one_of(json_values, st.dictionaries(
            st.sampled_from(["buffer_seconds", "min", "headroom", "tag_key", "lookback_days", "x"]), json_values)),
        "exempt": json_values, "approvers": json_values, "approval_ttl_hours": json_values,
        "self_role_patterns": json_values, "max_changes_per_hour": json_values})))


@settings(max_examples=500, deadline=None, database=None)
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
