"""``safetycatch selftest``: the deployed bot proves itself end to end, in the account it watches.

It makes a harmless footgun and waits for the bot to fix it through the real path (CloudTrail -> EventBridge ->
``on_config_change`` -> the fix), then deletes everything it made:

1. ``trail`` and ``rule``: doctor's ``cloudtrail`` and ``rule:on_config_change`` checks (what the path needs);
2. ``create``: a throwaway execution role, function (Timeout 10) and REST API ``GET /selftest`` in front of it,
   all named ``safetycatch-selftest-<id>`` and tagged ``safetycatch:selftest=true``;
3. ``change``: the function's Timeout raised to 29 s, which the 29 s REST integration timeout makes an
   ``apigw-timeout`` footgun (nothing calls the API: the footgun hurts no one);
4. ``event``: the bot handled the change: its audit record of ``apigw-timeout`` for the function in the state
   table;
5. ``fix``: the function's Timeout read back from Lambda at 25 s or less (the policy's auto fix);
6. ``cleanup``: API, function and role deleted (also on timeout, an error or Ctrl-C).

A stage the bot never reached is ``missing`` with why, from doctor's checks (trail, rule, state table, mode).
On the embedded default (``AWS_ENDPOINT_URL`` set, as in the demo) moto records no CloudTrail events: the same
steps run with the local bot, fed by :class:`safetycatch.local.local_trail.LocalTrail` the events the trail would
deliver for the self-test's own calls (see that module for what it does and does not stand in for).

Exit 0 fixed within ``--timeout``, 1 not (the missing stage named), 2 usage / credentials.
JSON: ``{"passed", "seconds", "stages": [{"id", "status", "detail"}], "cleaned_up"}``.

Example:
    test = SelfTest(boto3.session.Session(), doctor.Target.for_stage("prod"), timeout=300)
    report = test.run()
    report.passed, [s.id for s in report.stages]
    # -> (True, ['trail', 'rule', 'create', 'change', 'event', 'fix', 'cleanup'])
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import RETRY_CONFIG, error_code

PREFIX = "safetycatch-selftest-"
TAG_KEY, TAG_VALUE = "safetycatch:selftest", "true"
START_TIMEOUT, FOOTGUN_TIMEOUT = 10, 29  # 29 s behind a REST API (integration timeout 29 s): apigw-timeout
POLICY = "apigw-timeout"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
CODE = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'safetycatch selftest'}\n"
# The clock of a run (tests replace it: they never wait on the wall clock).
CLOCK: dict[str, Any] = {"now": time.monotonic, "sleep": time.sleep}
ROLE_PROPAGATION_TRIES = 15  # CreateFunction refuses a role IAM has not propagated yet (~10 s on AWS)


@dataclass(frozen=True)
class Stage:
    """One step of the self-test (the JSON contract: id, status ok|missing|cannot-check, detail)."""

    id: str
    status: str
    detail: str


@dataclass
class Report:
    passed: bool = False
    seconds: float | None = None
    stages: list[Stage] = field(default_factory=list)
    cleaned_up: bool = False

    def to_json(self) -> dict[str, Any]:
        """``{"passed", "seconds", "stages": [{"id", "status", "detail"}], "cleaned_up"}``."""
        return {"passed": self.passed, "seconds": self.seconds, "stages": [asdict(s) for s in self.stages],
                "cleaned_up": self.cleaned_up}


@dataclass
class Throwaway:
    """What the self-test made (one name for all of it), for the checks and the clean-up."""

    name: str = field(default_factory=lambda: PREFIX + uuid.uuid4().hex[:10])
    function_arn: str = ""
    api_id: str = ""


class SelfTest:
    """One run. ``now`` / ``sleep`` are injectable (tests never wait); ``trail`` is the local event path on the
    embedded default (None on AWS, where CloudTrail and EventBridge deliver), ``bot`` the local bot's runtime."""

    def __init__(self, session: Any, target: Any, timeout: float = 300.0, poll: float = 3.0,
                 now: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None,
                 trail: Any = None, bot: Any = None) -> None:
        self.session, self.target, self.timeout, self.poll = session, target, timeout, poll
        self.now, self.sleep = now or CLOCK["now"], sleep or CLOCK["sleep"]
        self.trail, self.bot = trail, bot
        self.region = session.region_name or "us-east-1"
        self._clients: dict[str, Any] = {}
        self.made = Throwaway()

    def client(self, service: str) -> Any:
        """The self-test's clients: on the embedded default every call they make goes into the local trail."""
        if service not in self._clients:
            made = self.session.client(service, region_name=self.region, config=RETRY_CONFIG)
            self._clients[service] = self.trail.attach(made) if self.trail is not None else made
        return self._clients[service]

    # -- the run ----------------------------------------------------------------------------------------

    def run(self) -> Report:
        """Every stage, then the clean-up whatever happened (KeyboardInterrupt included: it is re-raised after
        the clean-up, with the report as far as it got in ``self.report``)."""
        self.report = report = Report()
        try:
            report.stages += self._path()
            for step in (self._create, self._change):
                report.stages.append(self._guard(step.__name__.strip("_"), step))
                if report.stages[-1].status != "ok":
                    return report
            changed = self.now()
            event, fix, fixed_at = self._wait()
            report.stages += [event, fix]
            report.passed = fix.status == "ok"
            report.seconds = round(fixed_at - changed, 1) if fixed_at is not None else None
            return report
        except KeyboardInterrupt:
            report.stages.append(Stage("interrupted", "missing", "stopped by Ctrl-C before the bot fixed it"))
            raise
        finally:
            cleanup = self._cleanup()
            report.stages.append(cleanup)
            report.cleaned_up = cleanup.status == "ok"

    def _guard(self, stage_id: str, step: Callable[[], Stage]) -> Stage:
        try:
            return step()
        except (ClientError, BotoCoreError) as exc:
            name, said = getattr(exc, "operation_name", "AWS"), getattr(exc, "response", {}).get("Error", {})
            return Stage(stage_id, "missing", f"{name} refused: {error_code(exc) or type(exc).__name__}: "
                                              f"{said.get('Message', exc)}"[:300])

    def _path(self) -> list[Stage]:
        """The trail and the bot's rule, as doctor sees them (on the embedded default: the local stand-ins)."""
        if self.trail is not None:
            return [Stage("trail", "ok", "local trail: moto records no CloudTrail events, so the self-test's own "
                                         "calls are recorded as CloudTrail records them "
                                         "(safetycatch/local/local_trail.py)"),
                    Stage("rule", "ok", "local rules: the deployed rules' patterns hand matching events to the "
                                        "local bot's on_config_change handler")]
        items = self._doctor(("cloudtrail", "rule:on_config_change"))
        return [Stage("trail" if i.id == "cloudtrail" else "rule", i.status, i.detail + (f" (fix: {i.fix})"
                                                                                      if i.fix else ""))
                for i in items]

    def _create(self) -> Stage:
        made, tags = self.made, {TAG_KEY: TAG_VALUE}
        role = self.client("iam").create_role(
            RoleName=made.name, AssumeRolePolicyDocument=TRUST, Description="safetycatch selftest: deleted after it",
            Tags=[{"Key": TAG_KEY, "Value": TAG_VALUE}])["Role"]["Arn"]
        made.function_arn = self._create_function(role, tags)
        apigw = self.client("apigateway")
        made.api_id = apigw.create_rest_api(name=made.name, tags=tags,
                                            description="safetycatch selftest: deleted after it")["id"]
        root = apigw.get_resources(restApiId=made.api_id)["items"][0]["id"]
        resource = apigw.create_resource(restApiId=made.api_id, parentId=root, pathPart="selftest")["id"]
        apigw.put_method(restApiId=made.api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE")
        apigw.put_integration(restApiId=made.api_id, resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                              integrationHttpMethod="POST", uri=f"arn:aws:apigateway:{self.region}:lambda:path/"
                                                                f"2015-03-31/functions/{made.function_arn}/invocations")
        account = made.function_arn.split(":")[4]
        self.client("lambda").add_permission(
            FunctionName=made.name, StatementId="safetycatch-selftest", Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=f"arn:aws:execute-api:{self.region}:{account}:{made.api_id}/*/GET/selftest")
        return Stage("create", "ok", f"function {made.name} (Timeout {START_TIMEOUT} s) behind REST API "
                                     f"{made.api_id} GET /selftest, role {made.name}, tagged {TAG_KEY}={TAG_VALUE}")

    def _create_function(self, role: str, tags: dict[str, str]) -> str:
        from safetycatch.local.sandbox import tiny_zip

        lam = self.client("lambda")
        for attempt in range(ROLE_PROPAGATION_TRIES):
            try:
                arn = lam.create_function(FunctionName=self.made.name, Runtime="python3.12", Role=role,
                                          Handler="app.handler", Code={"ZipFile": tiny_zip(CODE)},
                                          Timeout=START_TIMEOUT, MemorySize=128, Tags=tags,
                                          Description="safetycatch selftest: deleted after it")["FunctionArn"]
                break
            except ClientError as exc:  # the new role is not assumable by Lambda yet: IAM is eventually consistent
                if error_code(exc) != "InvalidParameterValueException" or attempt == ROLE_PROPAGATION_TRIES - 1:
                    raise
                self.sleep(2)
        self._until_updated()
        return str(arn)

    def _until_updated(self) -> None:
        """Lambda refuses a configuration change while the function is Pending or an update is in progress."""
        deadline = self.now() + 60
        while True:
            config = self.client("lambda").get_function_configuration(FunctionName=self.made.name)
            if config.get("State", "Active") != "Pending" and config.get("LastUpdateStatus") != "InProgress":
                return
            if self.now() >= deadline:
                return
            self.sleep(1)

    def _change(self) -> Stage:
        self.client("lambda").update_function_configuration(FunctionName=self.made.name, Timeout=FOOTGUN_TIMEOUT)
        return Stage("change", "ok", f"Timeout raised to {FOOTGUN_TIMEOUT} s behind a 29 s REST integration "
                                     f"(apigw-timeout)")

    # -- waiting for the bot ------------------------------------------------------------------------------

    def _wait(self) -> tuple[Stage, Stage, float | None]:
        """Poll the function and the bot's audit trail until the fix shows or the time is up."""
        changed, fixed_at = self.now(), None
        deadline = changed + self.timeout
        while True:
            if self.trail is not None:
                self.trail.deliver(self.bot)
            timeout = self.client("lambda").get_function_configuration(FunctionName=self.made.name)["Timeout"]
            if timeout < FOOTGUN_TIMEOUT and fixed_at is None:
                fixed_at = self.now()
            audit = self._audit()
            if fixed_at is not None or self.now() >= deadline:
                break
            self.sleep(min(self.poll, max(0.0, deadline - self.now())))
        return self._event_stage(audit), self._fix_stage(timeout, fixed_at, audit), fixed_at

    def _audit(self) -> list[dict[str, Any]] | None:
        """The bot's audit records of the policy for the function (None: the state table cannot be read)."""
        try:
            items = self.client("dynamodb").query(
                TableName=self.target.table, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"audit#{self.made.function_arn}"}})["Items"]
        except (ClientError, BotoCoreError):
            return None
        records = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
        return [r for r in records if r.get("policy") == POLICY]

    def _event_stage(self, audit: list[dict[str, Any]] | None) -> Stage:
        if audit is None:
            return Stage("event", "cannot-check", f"the state table {self.target.table} cannot be read here")
        if audit:
            return Stage("event", "ok", f"the bot handled the change: {POLICY} {audit[-1].get('outcome')} "
                                        f"at {audit[-1].get('at')}")
        return Stage("event", "missing", f"no decision of the bot about {self.made.name} within {self.timeout:g} s: "
                                         + self._why_no_event())

    def _fix_stage(self, timeout: int, fixed_at: float | None, audit: list[dict[str, Any]] | None) -> Stage:
        if fixed_at is not None:
            return Stage("fix", "ok", f"Timeout {FOOTGUN_TIMEOUT} -> {timeout} s, read back from Lambda")
        decided = f"; the bot decided {audit[-1].get('outcome')!r} (mode {audit[-1].get('mode')})" if audit else ""
        return Stage("fix", "missing", f"Timeout still {timeout} s after {self.timeout:g} s{decided}")

    def _why_no_event(self) -> str:
        """What stopped the change from reaching the bot: the local bot's own answer, or doctor's checks."""
        if self.trail is not None:
            skipped = [r.get("skipped") for r in self.trail.delivered if r.get("skipped")]
            if skipped:
                return f"the local bot skipped it ({skipped[-1]})"
            return "the local bot got no event for it" if not self.trail.delivered else "the local bot decided nothing"
        bad = [i for i in self._doctor(("cloudtrail", "rule:on_config_change", "state-table", "mode-parameter"))
               if i.status != "ok" or (i.id == "mode-parameter" and not i.detail.endswith("= enforce"))]
        if not bad:
            return ("doctor finds the trail, the rule, the table and the mode in order: CloudTrail can take up to "
                    "15 minutes to deliver, try a longer --timeout, and check the bot's log and dead-letter queue")
        return "; ".join(f"doctor: {i.id} {i.status}: {i.detail}" + (f" (fix: {i.fix})" if i.fix else "")
                         for i in bad)

    def _doctor(self, ids: tuple[str, ...]) -> list[Any]:
        from safetycatch import doctor

        checker = doctor.Checker(self.session, self.target)
        checks: dict[str, Callable[[], Any]] = {
            "cloudtrail": lambda: doctor.check_trail(checker), "state-table": lambda: doctor.check_table(checker),
            "mode-parameter": lambda: doctor.check_mode(checker)}
        items = []
        for item_id in ids:
            if item_id.startswith("rule:"):
                items += [i for i in doctor.check_rules(checker) if i.id == item_id]
            else:
                items.append(checker.guarded(item_id, checks[item_id]))
        return items

    # -- clean-up -----------------------------------------------------------------------------------------

    def _cleanup(self) -> Stage:
        """Delete by name whatever exists (an interrupted create leaves no id behind); gone already is fine."""
        name, failed = self.made.name, []
        deletions: list[tuple[str, Callable[[], Any]]] = [
            ("API", self._delete_api), ("function", lambda: self.client("lambda").delete_function(FunctionName=name)),
            ("role", lambda: self.client("iam").delete_role(RoleName=name))]
        for what, delete in deletions:
            try:
                delete()
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) not in ("ResourceNotFoundException", "NotFoundException", "NoSuchEntity"):
                    failed.append(f"{what} {name}: {error_code(exc) or type(exc).__name__}")
        if failed:
            return Stage("cleanup", "missing", f"could not delete {'; '.join(failed)}: delete them by hand (tag "
                                               f"{TAG_KEY}={TAG_VALUE})")
        return Stage("cleanup", "ok", f"deleted the API, function and role {name}")

    def _delete_api(self) -> None:
        apigw = self.client("apigateway")
        ids = {self.made.api_id} - {""} or {a["id"] for a in apigw.get_rest_apis(limit=500).get("items", [])
                                          if a.get("name") == self.made.name}
        for api_id in ids:
            apigw.delete_rest_api(restApiId=api_id)


# -- the command -------------------------------------------------------------------------------------------


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``safetycatch selftest [--stage S] [--region R] [--timeout SECONDS] [--format table|json]`` (+ --profile)."""
    selftest = sub.add_parser("selftest", parents=parents, help="prove the deployed bot works: make a harmless "
                              "footgun, wait for the fix through the real event path, clean up")
    selftest.add_argument("--stage", help="the deployed stage (default dev; without it the SAFETYCATCH_* "
                                          "settings override the stage's names)")
    selftest.add_argument("--region", metavar="R", help="the bot's region (default: the boto3 chain's)")
    selftest.add_argument("--timeout", metavar="SECONDS", type=float, default=300.0,
                          help="how long to wait for the fix (default 300; CloudTrail may take minutes)")
    selftest.add_argument("--format", choices=("table", "json"), default="table")


def local_bot(session: Any, region: str) -> tuple[Any, Any]:
    """The embedded default's trail and bot: a :class:`LocalTrail` and the runtime ``replay --fix`` would use."""
    from chalicelib.bot.runtime import Runtime
    from safetycatch.local.local_trail import LocalTrail

    caller = session.client("sts", region_name=region).get_caller_identity()
    runtime = Runtime.from_env(region=region)
    return LocalTrail(caller["Account"], region, caller["Arn"]), runtime


def cmd_selftest(args: argparse.Namespace) -> int:
    import boto3

    from safetycatch import doctor
    from safetycatch.common import UsageError

    if not 1 <= args.timeout <= 3600:
        raise UsageError(f"selftest: --timeout {args.timeout:g} is not between 1 and 3600 seconds")
    try:
        target = doctor.Target.for_stage(args.stage or "dev", use_environment=not args.stage)
    except ValueError as exc:
        raise UsageError(str(exc).replace("doctor:", "selftest:")) from None
    session = boto3.session.Session(profile_name=args.profile or None, region_name=args.region or None)
    region = session.region_name or "us-east-1"
    session.client("sts", region_name=region).get_caller_identity()  # no credentials: exit 2, nothing made
    trail, bot = local_bot(session, region) if os.environ.get("AWS_ENDPOINT_URL") else (None, None)
    test = SelfTest(session, target, timeout=args.timeout, trail=trail, bot=bot)
    try:
        report = test.run()
    except KeyboardInterrupt:
        report = test.report
    show(report, args.format)
    return 0 if report.passed else 1


def show(report: Report, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(report.to_json(), indent=2))
        sys.stdout.flush()
        return
    from safetycatch import render

    render.doctor_table([{**asdict(s), "fix": ""} for s in report.stages])
    verdict = (f"[green]passed[/]: the bot fixed it {report.seconds:g} s after the change" if report.passed
               else "[bold red]failed[/]: " + next((f"{s.id} {s.status}" for s in report.stages if s.status != "ok"),
                                                   "no fix"))
    render.console.print(f"selftest {verdict}; cleaned up: {'yes' if report.cleaned_up else 'NO'}")
