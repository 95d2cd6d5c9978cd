"""A deploy storm through the real handler, run the way Lambda runs the bot's event handler (dev-only: the bench
and the tests).

A CloudFormation stack updating N functions emits five CloudTrail events per function (code, configuration,
tags added and removed, an API permission); EventBridge delivers each at least once (a share twice). What Lambda
does with them, and the simulation reproduces in process:

* asynchronous invocation: an internal queue, at most ``concurrency`` invocations at once (the bot's reserved
  concurrency) - a bounded worker pool;
* a failed invocation is retried up to ``MaximumRetryAttempts`` times, then its invocation record goes to the
  on-failure destination (the dead-letter queue, in Lambda's record shape); an event older than
  ``MaximumEventAgeInSeconds`` when its turn comes goes there too (``EventAgeExceeded``). The settings are the
  template's (safetycatch/build/dead_letters.py ``EVENT_HANDLER``);
* Lambda waits about 1 then 2 minutes before a retry; here a retry goes to the back of the queue instead (the
  order is what correctness depends on; ``make bench`` says what the waits add).

Throttling is injected where the handler meets it: a Lambda API read answered ``TooManyRequestsException`` after
botocore's own retries are spent (a ``before-call`` hook answers before the request is sent). A deterministic
plan, keyed by the CloudTrail event id, says which attempts of which events are throttled: most never, a share
once or twice (Lambda's retry then succeeds), a few on every attempt (the dead-letter queue keeps them).

Example:
    events = deploy_events([f"fn-{i:04d}" for i in range(2000)])
    storm = Storm(runtime, sqs, dlq_url, concurrency=10, plan=ThrottlePlan(share=0.1, persistent=0.005))
    report = storm.run(events)
    report.check()   # every event handled exactly once or dead-lettered; no write twice
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.awsrequest import AWSResponse

from safetycatch.build.dead_letters import EVENT_HANDLER, AsyncSettings
from safetycatch.local.cloudtrail import ACCOUNT, REGION, api_call

STACK_ROLE = "cfn-deploy-role"  # the role CloudFormation deploys the stack with (not the bot's own)
READ_PREFIXES = ("Get", "List")
WRITES = {"UpdateFunctionConfiguration", "PutFunctionConcurrency", "DeleteFunctionConcurrency",
          "UpdateEventSourceMapping", "PutFunctionRecursionConfig", "PutProvisionedConcurrencyConfig"}


# -- the deploy --------------------------------------------------------------------------------------------------


def _stack_call(name: str, request: dict[str, Any], key: str) -> dict[str, Any]:
    """One CloudTrail event of the stack's update, made by CloudFormation (deterministic ids)."""
    event = api_call(name, request, role=STACK_ROLE, session="AWSCloudFormation",
                     event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"storm/{key}")))
    event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"storm/envelope/{key}"))
    event["detail"]["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    event["detail"]["sourceIPAddress"] = event["detail"]["userAgent"] = "cloudformation.amazonaws.com"
    return event


def function_events(name: str, timeout: int = 30) -> list[dict[str, Any]]:
    """The five events CloudFormation's update of one function makes."""
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return [
        _stack_call("UpdateFunctionCode20150331v2", {"functionName": name, "s3Bucket": "cfn-artifacts",
                                                     "s3Key": f"{name}/v2.zip", "publish": False}, f"{name}/code"),
        _stack_call("UpdateFunctionConfiguration20150331v2", {"functionName": name, "timeout": timeout,
                                                               "memorySize": 512, "environment": {}}, f"{name}/config"),
        _stack_call("TagResource20170331v2", {"resource": arn, "tags": {"release": "v2"}}, f"{name}/tag"),
        _stack_call("UntagResource20170331v2", {"resource": arn, "tagKeys": ["release-candidate"]}, f"{name}/untag"),
        _stack_call("AddPermission20150331v2", {"functionName": name, "statementId": f"{name}-api",
                                                "action": "lambda:InvokeFunction",
                                                "principal": "apigateway.amazonaws.com"}, f"{name}/permission"),
    ]


def seed_stack(account: Any, n: int, api_every: int = 20) -> tuple[list[str], set[str]]:
    """The stack's ``n`` functions in a sandbox account (safetycatch/local/sandbox.py); every ``api_every``-th sits
    behind a REST API with a 30 s timeout, which the bot's apigw-timeout policy fixes to 25 s. Returns the names and
    the ARNs that need that fix."""
    names, needs_fix = [f"stack-fn-{i:04d}" for i in range(n)], set()
    for i, name in enumerate(names):
        behind_api = i % api_every == 0
        arn = account.function(name, timeout=30 if behind_api else 10)
        if behind_api:
            account.rest_api(arn, path=f"r{i}")
            needs_fix.add(arn)
    return names, needs_fix


def storm_policies(target: Any, source: Any) -> Any:
    """A copy of the policies with the blast-radius caps out of the way, so that every fix the storm needs is made
    (and a second write of any of them would show)."""
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)
    settings = target / "settings.yaml"
    text = settings.read_text()
    for key, value in (("max_changes_per_hour", 20), ("max_changes_per_function_per_hour", 5),
                       ("max_changes_per_policy_per_hour", 10)):
        text = text.replace(f"{key}: {value}\n", f"{key}: 10000\n")  # the per-function and per-policy caps too
    settings.write_text(text)
    return target


def deploy_events(names: list[str], parallel: int = 20, duplicate_every: int = 50) -> list[dict[str, Any]]:
    """Every function's five events, as CloudFormation updates ``parallel`` functions at a time (their events
    interleave), and every ``duplicate_every``-th delivery repeated (EventBridge delivers at least once)."""
    deliveries: list[dict[str, Any]] = []
    for start in range(0, len(names), parallel):
        group = [function_events(name) for name in names[start:start + parallel]]
        for step in range(5):
            for events in group:
                deliveries.append(events[step])
                if duplicate_every and len(deliveries) % duplicate_every == 0:
                    deliveries.append(deliveries[-parallel if len(deliveries) > parallel else -1])
    return deliveries


# -- throttling --------------------------------------------------------------------------------------------------


def error_response(code: str, status: int, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    """What a ``before-call`` hook returns to answer a call with an AWS error without sending it."""
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse("https://lambda.invalid/", status, {}, None), parsed


@dataclass(frozen=True)
class ThrottlePlan:
    """Which attempts of an event are throttled: ``persistent`` share on every attempt, ``share`` on the first
    one or two, the rest never. Deterministic in the CloudTrail event id."""

    share: float = 0.1
    persistent: float = 0.005

    def failing_attempts(self, event_key: str) -> int:
        u = int(hashlib.sha256(event_key.encode()).hexdigest()[:8], 16) / 2**32
        if u < self.persistent:
            return 99
        if u < self.persistent + self.share:
            return 1 if u < self.persistent + self.share / 2 else 2
        return 0


class Injector:
    """``before-call`` hooks on the runtime's session: throttle Lambda reads per the plan for the invocation the
    current thread runs, and count AWS calls and writes (per operation and function)."""

    def __init__(self, plan: ThrottlePlan) -> None:
        self.plan, self.local = plan, threading.local()
        self.lock = threading.Lock()
        self.injected, self.calls = 0, 0
        self.operations: Counter[str] = Counter()  # "lambda.GetPolicy" -> calls
        self.writes: Counter[tuple[str, str]] = Counter()

    def watch(self, session: Any) -> None:
        session.events.register("before-call", self)
        session.events.register("before-parameter-build.lambda", self._count_write)

    def _count_write(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in WRITES:
            with self.lock:
                self.writes[(model.name, str(params.get("FunctionName") or params.get("UUID")))] += 1

    @contextlib.contextmanager
    def invocation(self, event_key: str, attempt: int) -> Iterator[None]:
        self.local.current = (self.plan.failing_attempts(event_key), attempt)
        try:
            yield
        finally:
            self.local.current = None

    def __call__(self, model: Any, **_: Any) -> Any:
        failing, attempt = getattr(self.local, "current", None) or (0, 0)
        with self.lock:
            self.calls += 1
            self.operations[f"{model.service_model.service_name}.{model.name}"] += 1
            if model.service_model.service_name == "lambda" and model.name.startswith(READ_PREFIXES) \
                    and attempt and attempt <= failing:
                self.injected += 1
                return error_response("TooManyRequestsException", 429, "Rate exceeded")
        return None


# -- Lambda's asynchronous invocation ----------------------------------------------------------------------------


def invocation_record(event: dict[str, Any], function_arn: str, condition: str, attempts: int,
                      error: BaseException | None) -> dict[str, Any]:
    """The record Lambda sends to an on-failure destination (Lambda developer guide, "Capturing records of
    Lambda asynchronous invocations")."""
    record: dict[str, Any] = {
        "version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{function_arn}:$LATEST",
                           "condition": condition, "approximateInvokeCount": attempts},
        "requestPayload": event,
    }
    if error is not None:
        record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        record["responsePayload"] = {"errorType": type(error).__name__, "errorMessage": str(error)[:1000]}
    return record


# Lambda API quotas per account and region (Lambda developer guide, "Lambda quotas"; none can be increased):
# GetFunction 100 requests/s, GetPolicy 15/s, and 15/s across every other control-plane API together.
LAMBDA_API_QUOTAS = {"GetFunction": 100.0, "GetPolicy": 15.0}
LAMBDA_CONTROL_PLANE_QUOTA = 15.0


def quota_floor(operations: Counter[str]) -> tuple[float, str]:
    """The least time Lambda's API quotas allow for these calls on AWS, whatever the concurrency, and which quota
    sets it. (The deploy that causes the storm spends the same control-plane budget, so the real floor is higher.)

    Example:
        >>> quota_floor(Counter({"lambda.GetFunction": 1000, "lambda.GetPolicy": 300, "dynamodb.PutItem": 9}))
        (20.0, 'GetPolicy at 15/s')
    """
    lambda_calls = Counter({op.split(".", 1)[1]: n for op, n in operations.items() if op.startswith("lambda.")})
    floors = {f"{op} at {rate:g}/s": lambda_calls.get(op, 0) / rate for op, rate in LAMBDA_API_QUOTAS.items()}
    rest = sum(n for op, n in lambda_calls.items() if op not in LAMBDA_API_QUOTAS)
    floors[f"other Lambda control-plane calls at {LAMBDA_CONTROL_PLANE_QUOTA:g}/s"] = rest / LAMBDA_CONTROL_PLANE_QUOTA
    name = max(floors, key=lambda k: floors[k])
    return floors[name], name


@dataclass
class Invocation:
    event: dict[str, Any]
    delivery: int
    queued_at: float
    attempt: int = 1


@dataclass
class StormReport:
    """What happened to every delivery, and the figures."""

    deliveries: int
    handled: dict[int, dict[str, Any]] = field(default_factory=dict)
    dead_lettered: dict[int, str] = field(default_factory=dict)  # delivery -> Lambda's condition
    latencies: list[float] = field(default_factory=list)  # one per invocation (attempt), seconds
    waits: list[float] = field(default_factory=list)  # first queued -> handled or dead-lettered, seconds
    retries: int = 0
    elapsed: float = 0.0
    event_ids: dict[int, str] = field(default_factory=dict)

    def acted(self) -> Counter[str]:
        """How many deliveries of each event ran the handler through (not a duplicate)."""
        return Counter(self.event_ids[d] for d, r in self.handled.items() if not r.get("duplicate"))

    def problems(self, writes: Counter[tuple[str, str]]) -> list[str]:
        """Every way this storm lost or doubled something ([] when it dropped nothing)."""
        found = []
        if set(self.handled) & set(self.dead_lettered):
            found.append("a delivery both handled and dead-lettered")
        if missing := self.deliveries - len(self.handled) - len(self.dead_lettered):
            found.append(f"{missing} deliveries neither handled nor dead-lettered")
        twice = [e for e, n in self.acted().items() if n > 1]
        if twice:
            found.append(f"{len(twice)} events acted on more than once")
        lost = set(self.event_ids.values()) - set(self.acted()) - {self.event_ids[d] for d in self.dead_lettered}
        if lost:
            found.append(f"{len(lost)} events neither acted on nor dead-lettered")
        if doubled := [k for k, n in writes.items() if n > 1]:
            found.append(f"{len(doubled)} writes made more than once: {doubled[:3]}")
        return found


class Storm:
    """Runs deliveries through ``handler`` as Lambda's asynchronous invocation would (see the module doc)."""

    def __init__(self, runtime: Any, sqs: Any, dlq_url: str, concurrency: int = 10,
                 plan: ThrottlePlan | None = None, settings: AsyncSettings = EVENT_HANDLER,
                 handler: Callable[..., dict[str, Any]] | None = None, clock: Callable[[], float] = time.monotonic,
                 function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:safetycatch-prod-on_config_change"):
        from chalicelib.bot.handlers import handle_event

        self.runtime, self.sqs, self.dlq_url, self.concurrency = runtime, sqs, dlq_url, concurrency
        self.settings, self.clock, self.function_arn = settings, clock, function_arn
        self.handler = handler or handle_event
        self.injector = Injector(plan or ThrottlePlan(0.0, 0.0))
        self.injector.watch(runtime.session)
        self._lock = threading.Condition()

    def run(self, events: list[dict[str, Any]]) -> StormReport:
        """All deliveries through the bounded pool; returns when every one is handled or dead-lettered."""
        report = StormReport(len(events))
        now = self.clock()
        queue = deque(Invocation(e, i, now) for i, e in enumerate(events))
        report.event_ids = {i: str((e.get("detail") or {}).get("eventID")) for i, e in enumerate(events)}
        busy = [0]

        def worker() -> None:
            while (job := self._take(queue, busy)) is not None:
                retry = self._invoke(job, report)
                with self._lock:
                    busy[0] -= 1
                    if retry is not None:
                        queue.append(retry)
                    self._lock.notify_all()

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, name=f"lambda-{n}") for n in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report.elapsed = time.perf_counter() - started
        return report

    def _take(self, queue: deque[Invocation], busy: list[int]) -> Invocation | None:
        with self._lock:
            while not queue and busy[0]:
                self._lock.wait()
            if not queue:
                return None
            busy[0] += 1
            return queue.popleft()

    def _invoke(self, job: Invocation, report: StormReport) -> Invocation | None:
        """One invocation; returns the retry to queue, if any."""
        if self.clock() - job.queued_at > self.settings.max_age_s:
            self._dead_letter(job, report, "EventAgeExceeded", None)
            return None
        key = str((job.event.get("detail") or {}).get("eventID") or job.event.get("id"))
        started = time.perf_counter()
        try:
            with self.injector.invocation(key, job.attempt):
                result = self.handler(job.event, runtime=self.runtime)
        except Exception as exc:  # noqa: BLE001 - Lambda catches whatever the function raises
            with self._lock:
                report.latencies.append(time.perf_counter() - started)
            if job.attempt <= self.settings.max_retries:
                with self._lock:
                    report.retries += 1
                return replace(job, attempt=job.attempt + 1)
            self._dead_letter(job, report, "RetriesExhausted", exc)
            return None
        with self._lock:
            report.latencies.append(time.perf_counter() - started)
            report.waits.append(self.clock() - job.queued_at)
            report.handled[job.delivery] = result
        return None

    def _dead_letter(self, job: Invocation, report: StormReport, condition: str, error: BaseException | None) -> None:
        record = invocation_record(job.event, self.function_arn, condition, job.attempt, error)
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record))
        with self._lock:
            report.dead_lettered[job.delivery] = condition
            report.waits.append(self.clock() - job.queued_at)


@contextlib.contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """DynamoDB applies each conditional write atomically; moto's backend does not lock. Give it that property
    for a run with many threads (our conditions are what is under test, not moto's threading)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in ("put_item", "update_item", "delete_item")}

    def locked(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)
        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)
