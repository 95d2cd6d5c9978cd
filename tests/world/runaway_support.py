"""Helpers for the kill-switch tests: policy directories with changed settings, and a botocore Stubber for the
two Lambda operations moto lacks (Get/PutFunctionRecursionConfig) while every other call still goes to moto."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.stub import Stubber

from chalicelib.bot.runtime import Runtime

POLICIES = Path(__file__).resolve().parents[2] / "policies"
RECURSION_OPERATIONS = ("get_function_recursion_config", "put_function_recursion_config")


def policies_with(tmp_path: Path, settings: dict[str, Any] | None = None,
                  runaway: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the repo's policies with ``settings.yaml`` keys and runaway-loop params/mode overridden."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    for name in drop:
        (target / name).unlink()
    if settings:
        doc = yaml.safe_load((target / "settings.yaml").read_text()) or {}
        (target / "settings.yaml").write_text(yaml.safe_dump({**doc, **settings}))
    if runaway:
        doc = yaml.safe_load((target / "runaway-loop.yaml").read_text())
        doc["params"].update(runaway.get("params", {}))
        doc.update({k: v for k, v in runaway.items() if k != "params"})
        (target / "runaway-loop.yaml").write_text(yaml.safe_dump(doc))
    return target


class _SplitLambda:
    """The runtime's Lambda client, except the recursion operations, which go to a Stubber-driven client."""

    def __init__(self, real: Any, stubbed: Any) -> None:
        self._real, self._stubbed = real, stubbed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in RECURSION_OPERATIONS else self._real, name)


def stub_recursion(runtime: Runtime, region: str = "us-east-1") -> Stubber:
    """Route the runtime's Get/PutFunctionRecursionConfig calls to a botocore Stubber (returned, activated)."""
    clients = runtime.clients(region)
    stubbed = boto3.session.Session(region_name=region).client("lambda", region_name=region)
    stubber = Stubber(stubbed)
    stubber.activate()
    clients._clients["lambda"] = _SplitLambda(clients("lambda"), stubbed)
    return stubber


def loop_metrics(aws: Any, name: str, per_minute: float = 9000.0, minutes: int = 3) -> None:
    """What Lambda publishes while ``name`` loops: ``per_minute`` Invocations in each of the last ``minutes``
    minutes (moto's GetMetricData aggregates these as CloudWatch does)."""
    now = datetime.now(timezone.utc)
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": name}],
         "Timestamp": now - timedelta(seconds=20 + 60 * k), "Value": per_minute, "Unit": "Count"}
        for k in range(minutes)])


class SettlingMappings:
    """Lambda's event source mapping states that moto skips (its mappings are Enabled or Disabled at once).

    On AWS a mapping is ``Creating``, ``Enabling`` or ``Updating`` for a while after a change, and
    UpdateEventSourceMapping on it then fails with ``ResourceInUseException`` ("you tried to update an event source
    mapping in the CREATING state": Lambda API reference, UpdateEventSourceMapping errors). This component gives
    chosen mappings such a state for ``seconds`` of its own clock, which advances only through :meth:`sleep` (what
    the gateway's ``sleep`` is set to, so no test waits): while transitional, the mapping reads so
    (Get/ListEventSourceMappings) and UpdateEventSourceMapping on it answers ResourceInUseException; once settled
    every call goes to moto unchanged.

    Example::

        settling = SettlingMappings()
        settling.hold(uuid, "Creating", seconds=10)
        settling.serve(runtime.clients("us-east-1")("lambda"))
        runtime.engine(account, region).gateway.sleep = settling.sleep
    """

    def __init__(self) -> None:
        self.clock = 0.0
        self.until: dict[str, tuple[str, float]] = {}
        self.slept: list[float] = []

    def hold(self, uuid: str, state: str, seconds: float) -> None:
        self.until[uuid] = (state, self.clock + seconds)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock += seconds

    def _state(self, uuid: str) -> str | None:
        state, until = self.until.get(uuid, ("", 0.0))
        return state if self.clock < until else None

    def serve(self, client: Any) -> None:
        from botocore.awsrequest import AWSResponse

        asked: dict[str, Any] = {}

        def remember(params: dict[str, Any], **_: Any) -> None:
            asked.clear()
            asked.update(params)

        def in_use(**_: Any) -> Any:
            state = self._state(str(asked.get("UUID")))
            if state is None:
                return None
            error = {"Code": "ResourceInUseException", "Message": f"The event source mapping is in the {state} state"}
            return AWSResponse("https://lambda", 400, {}, None), {"Error": error, "ResponseMetadata": {}}

        def reads(parsed: dict[str, Any], **_: Any) -> None:
            for mapping in parsed.get("EventSourceMappings", [parsed]):
                state = self._state(str(mapping.get("UUID")))
                if state:
                    mapping["State"] = state

        client.meta.events.register("before-parameter-build.lambda.UpdateEventSourceMapping", remember)
        client.meta.events.register("before-call.lambda.UpdateEventSourceMapping", in_use)
        client.meta.events.register("after-call.lambda.ListEventSourceMappings", reads)
        client.meta.events.register("after-call.lambda.GetEventSourceMapping", reads)


def cloudwatch_of(aws: Any, account: str = "123456789012", region: str = "us-east-1") -> Any:
    """The test world's CloudWatch (tests/world/cloudwatch_evaluator.py) for one account and region of ``aws`` (a
    sandbox account), kept on it so a test's alarms are evaluated on one clock."""
    from tests.world.cloudwatch_evaluator import Evaluator

    worlds = aws.__dict__.setdefault("_cloudwatch_worlds", {})
    if (account, region) not in worlds:
        worlds[(account, region)] = Evaluator(aws.client("cloudwatch"), account=account, region=region)
    return worlds[(account, region)]


def alarm_from_metrics(aws: Any, name: str, per_minute: float = 9000.0, account: str = "123456789012",
                       region: str = "us-east-1", minutes: int = 2) -> dict[str, Any]:
    """A loop in ``name``'s own metrics, evaluated by the test world's CloudWatch until the function's runaway alarm
    goes to ALARM; returns the event CloudWatch sends then. An alarm in ALARM already is first brought back to OK
    by a quiet minute (ALARM -> OK -> ALARM: a new event)."""
    from chalicelib.domain import alarms
    from tests.world.cloudwatch_evaluator import ALARM_EVENT, lambda_minutes

    world, alarm = cloudwatch_of(aws, account, region), alarms.alarm_name(name)
    cloudwatch = aws.client("cloudwatch")

    def state() -> str:
        return str(cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"])

    for _ in range(minutes + 2):
        if state() != "ALARM":
            break
        lambda_minutes(cloudwatch, name, world.now, [0.0])
        world.tick()
    lambda_minutes(cloudwatch, name, world.now, [per_minute] * minutes)
    for _ in range(minutes + 2):
        for event in world.tick():
            if event["detail-type"] == ALARM_EVENT and event["detail"]["alarmName"] == alarm and \
                    event["detail"]["state"]["value"] == "ALARM":
                return event
    raise AssertionError(f"{alarm} did not go to ALARM from the metrics")


def recovered(aws: Any, name: str, account: str = "123456789012", region: str = "us-east-1") -> dict[str, Any]:
    """Minutes without the loop until CloudWatch puts the function's runaway alarm back to OK; that event."""
    from chalicelib.domain import alarms

    world, alarm = cloudwatch_of(aws, account, region), alarms.alarm_name(name)
    for _ in range(10):
        for event in world.tick():
            if event["detail"]["alarmName"] == alarm and event["detail"]["state"]["value"] == "OK":
                return event
    raise AssertionError(f"{alarm} did not recover")
