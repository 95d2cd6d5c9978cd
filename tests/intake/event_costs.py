"""The AWS calls each watched event costs on the event path, measured (``python -m tests.intake.event_costs``).

Every recorded CloudTrail record (tests/events/ and tests/events/recorded/, one per watched event name) is handled
by ``handle_event`` on the world of ``tests/intake/test_recorded_events.py``'s "function exists" test (``orders-api``
and ``example-fn``, each fronted by a REST API, running as ``orders-api-role``), in a region of 12 more APIs,
after one acting sweep has built the invoker index, with a DynamoDB state table: every botocore call of the event is
counted (the recorder of tests/conftest.py), the customer's services apart from the bot's own state table
(``dynamodb``). Prints a markdown table by source. The figures are those of this world (a record naming a function
that does not exist costs less; a VPC change costs a ListFunctions page per 50 functions); they are what the closing
note of issue 22 lists.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from moto import mock_aws

from chalicelib.bot.handlers import handle_event
from chalicelib.bot.runtime import Runtime
from chalicelib.core import quotas
from chalicelib.intake import events
from chalicelib.store.state import table_definition
from safetycatch.local.sandbox import FAKE_CREDENTIALS, SandboxAccount
from tests.conftest import EVENTS, POLICIES, CallRecorder

TABLE = "safetycatch-costs"


def scenario_functions(aws: SandboxAccount) -> None:
    """The recorded records' functions (``orders-api``, and ``example-fn`` in the older records), each fronted by a
    REST API, running as ``orders-api-role``."""
    role = aws.execution_role("orders-api-role")
    for name in ("orders-api", "example-fn"):
        arn = aws.client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": aws._zip},
            Timeout=10, MemorySize=512)["FunctionArn"]
        aws.rest_api(arn, path=name)


def _world(aws: SandboxAccount) -> None:
    scenario_functions(aws)
    for i in range(12):
        aws.rest_api(aws.function(f"other-{i}", timeout=5), path=f"p{i}", name=f"api-{i}")
    aws.client("dynamodb").create_table(**table_definition(TABLE))


def cost(path: Path) -> tuple[str, str, Counter[str]]:
    """``(source, event name, calls)`` of one record on a fresh world."""
    record = json.loads(path.read_text())
    with mock_aws():
        aws = SandboxAccount()
        _world(aws)
        sweeper = Runtime.from_env(str(POLICIES), mode="enforce", region="us-east-1")
        sweeper.account = "123456789012"
        sweeper.engine("123456789012", "us-east-1").sweep(act=True)  # the schedule's sweep: the index is built
        runtime = Runtime.from_env(str(POLICIES), mode="enforce", region="us-east-1")
        runtime.account = "123456789012"
        recorder = CallRecorder()
        recorder.watch(runtime.session)  # before any client is made (a client copies the session's hooks)
        handle_event(record, runtime=runtime)
    return record["source"], events.base_name(record["detail"]["eventName"]), Counter(recorder.calls)


def main() -> None:
    for key, value in FAKE_CREDENTIALS.items():
        os.environ[key] = value
    os.environ["SAFETYCATCH_TABLE"] = TABLE
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    quotas.configure(share=quotas.DEFAULT_SHARE, clock=quotas.ManualClock(), enabled=True)
    files = sorted(p for folder in (EVENTS, EVENTS / "recorded") for p in folder.glob("*.json")
                   if json.loads(p.read_text()).get("detail-type") == events.CLOUDTRAIL)
    print("| source | event | AWS calls (customer) | state table | calls |")
    print("|---|---|---|---|---|")
    for path in files:
        source, name, calls = cost(path)
        own = sum(n for c, n in calls.items() if c.startswith("dynamodb."))
        theirs = {c: n for c, n in sorted(calls.items()) if not c.startswith("dynamodb.")}
        shown = ", ".join(f"{c}{f' x{n}' if n > 1 else ''}" for c, n in theirs.items())
        print(f"| {source} | {name} ({path.stem}) | {sum(theirs.values())} | {own} | {shown} |")


if __name__ == "__main__":
    main()
