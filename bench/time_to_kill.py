"""Time to kill, from the test world's CloudWatch clock (tests/world/cloudwatch_evaluator.py): how long from the first
minute a function's Invocations are over the threshold until it is throttled to 0, through the real handler.

Three runs on an in-process moto (``mock_aws``), each from Lambda-shaped metrics:

* a per-function runaway alarm (``safetycatch-runaway-<name>``, put by the bot on a TagResource event);
* the sentinel (Metrics Insights GROUP BY FunctionName), a first loop;
* the sentinel already in ALARM for a busy function, and a second loop starting then: before issue 21 this loop
  sent only a contributor state change no rule matched, and was never killed.

A figure is evaluator minutes (when CloudWatch sent the event that led to the kill, minus the start of the first
minute over the threshold) plus the wall time the handler took. Not in it: the minute or two CloudWatch takes to
ingest Lambda's metrics and evaluate, and EventBridge delivery (seconds); both add to every design alike.

    python bench/time_to_kill.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THRESHOLD = 1000  # Invocations a minute, the runaway-loop policy's (as a test sets it)


def _runtime(policies: Path) -> Any:
    from chalicelib.bot.runtime import Runtime

    runtime = Runtime.from_env(str(policies), mode="enforce", region="us-east-1")
    runtime.account = "123456789012"
    return runtime


def _until_killed(world: Any, runtime: Any, aws: Any, name: str, started: datetime, limit: int = 10) -> str:
    """Tick the evaluator minute by minute, deliver each event to the handler, until ``name`` is throttled."""
    from chalicelib.bot.handlers import handle_event

    lambda_ = aws.client("lambda")
    handler_seconds = 0.0
    for _ in range(limit):
        for event in world.tick():
            began = time.perf_counter()
            handle_event(event, runtime=runtime)
            handler_seconds += time.perf_counter() - began
            if lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") == 0:
                waited = (world.now - started).total_seconds()
                return f"{waited:.0f} s on CloudWatch's clock + {handler_seconds * 1000:.0f} ms in the handler"
    return f"not killed within {limit} minutes"


def _per_function(policies: Path) -> str:
    from moto import mock_aws

    from safetycatch.local.cloudtrail import api_call
    from safetycatch.local.sandbox import SandboxAccount
    from tests.world.cloudwatch_evaluator import Evaluator, lambda_minutes

    with mock_aws():
        aws, runtime = SandboxAccount(), _runtime(policies)
        arn = aws.function("looper", tags={"safetycatch:kill-switch": "true"})
        from chalicelib.bot.handlers import handle_event

        handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"safetycatch:kill-switch": "true"}}),
                     runtime=runtime)
        world = Evaluator(aws.client("cloudwatch"))
        runtime.store.clock = world.epoch
        started = world.now
        lambda_minutes(aws.client("cloudwatch"), "looper", started, [9000] * 10)
        return _until_killed(world, runtime, aws, "looper", started)


def _sentinel(policies: Path, busy_first: bool) -> str:
    from moto import mock_aws

    from chalicelib.killswitch import sentinel
    from safetycatch.local.sandbox import SandboxAccount
    from tests.world.cloudwatch_evaluator import Evaluator, lambda_minutes

    with mock_aws():
        aws, runtime = SandboxAccount(), _runtime(policies)
        sentinel.ensure_policy(runtime.policy_set, runtime.engine("123456789012", "us-east-1"))
        aws.function("looper")
        world = Evaluator(aws.client("cloudwatch"))
        world.serve(runtime.clients("us-east-1")("cloudwatch"))
        runtime.store.clock = world.epoch
        cloudwatch = aws.client("cloudwatch")
        if busy_first:  # a busy function above the threshold, and (a baseline's worth) always that busy
            aws.function("checkout")
            lambda_minutes(cloudwatch, "checkout", world.now, [3000] * 20)
            world.run(5)
        started = world.now
        lambda_minutes(cloudwatch, "looper", started, [9000] * 10)
        return _until_killed(world, runtime, aws, "looper", started)


def main() -> None:
    """Print the three time-to-kill figures."""
    from tests.world.runaway_support import policies_with

    saved = {k: os.environ.pop(k) for k in ("AWS_ENDPOINT_URL", "SAFETYCATCH_TABLE") if k in os.environ}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            alarm = policies_with(Path(tmp) / "a", runaway={"params": {"invocations_per_minute": THRESHOLD}})
            sentinels = policies_with(Path(tmp) / "s", runaway={"params": {"sentinel": True,
                                                                            "invocations_per_minute": THRESHOLD}})
            rows = [("per-function alarm (2 minutes over)", _per_function(alarm)),
                    ("sentinel, first loop", _sentinel(sentinels, busy_first=False)),
                    ("sentinel already in ALARM, second loop", _sentinel(sentinels, busy_first=True))]
    finally:
        os.environ.update(saved)
    print("\ntime to kill, from the first minute over the threshold (test world's CloudWatch clock; CloudWatch's "
          "own ingestion delay and EventBridge delivery not included):")
    for label, figure in rows:
        print(f"  {label:<42}{figure}")
    print("  (before issue 21 the second loop under a sentinel already in ALARM was never killed: no event)")


if __name__ == "__main__":
    from safetycatch.local.sandbox import FAKE_CREDENTIALS

    os.environ.update(FAKE_CREDENTIALS)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    main()
