"""``safetycatch doctor``: what a real account needs before the bot can work there, one line per item.

Checks (ids): ``cloudtrail`` (a trail logging management write events in the region: EventBridge gets "AWS API
Call via CloudTrail" events only from a trail), ``rule:<handler>`` (each EventBridge rule of the bot exists, is
enabled, sends its handler what this version subscribes to), ``iam-forwarding`` (outside us-east-1: the rule there
that forwards IAM changes), ``state-table``, ``mode-parameter``, ``slack-secret``, ``slack-auth`` (Slack's
``auth.test`` with the secret's token), ``layer`` (the pinned Powertools layer in the region), and with
``--all-accounts`` per member account ``member-role:<id>`` (the remediation role can be assumed),
``member-rules:<id>`` (its forwarding rules exist and match) and ``member-dead-letters:<id>`` (nothing its rules
could not forward waits in their dead-letter queue). Each item is ``ok``, ``missing`` (with the fix) or
``cannot-check`` (the answer is not available here: an API moto lacks, a refused read, an unreachable service);
``cannot-check`` is never counted as present.

Names come from the stage's settings in .chalice/config.json (``--stage``; without it the ``SAFETYCATCH_*``
environment overrides them), or, without a checkout, from the naming convention (``safetycatch-<stage>``).

Example:
    report = run(boto3.session.Session(region_name="eu-west-1"), Target.for_stage("prod"))
    [(c.id, c.status) for c in report][:2]
    # -> [('cloudtrail', 'ok'), ('rule:on_config_change', 'ok')]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import RETRY_CONFIG, error_code, is_unsupported, queue_depth
from chalicelib.core.model import GLOBAL_MODES
from chalicelib.intake.events import CLOUDTRAIL_RULES, GLOBAL_SOURCES, cloudtrail_pattern
from chalicelib.killswitch.evidence import EVIDENCE_RULES
from chalicelib.org import accounts
from chalicelib.org.accounts import DEFAULT_MEMBER_ROLE, organization_accounts
from safetycatch.build import iam, identities, layer, member_template

SWEEP = ("scheduled_sweep", "rate(6 hours)")  # app.py's schedule
IAM_REGION = "us-east-1"  # CloudTrail records IAM calls here only
PROBE_KEY = {"pk": {"S": "doctor"}, "sk": {"S": "probe"}}
DEPLOY_FIX = "deploy the bot: make deploy STAGE={stage} BUCKET=<artifacts bucket>"
NO_TRAIL_FIX = ("create a multi-region trail logging management events: deploy with TRAIL=account or "
                "TRAIL=organization (stack parameter TrailMode=account or TrailMode=organization), or your own "
                "trail with `aws cloudtrail create-trail` (--is-multi-region-trail, a bucket with CloudTrail's "
                "bucket policy) then `aws cloudtrail start-logging`")


@dataclass(frozen=True)
class Item:
    """One line of the checklist (the JSON contract: id, status, detail, fix)."""

    id: str
    status: str  # ok | missing | cannot-check
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Target:
    """What to check: the stage's resource names and the bot's own settings."""

    stage: str
    app: str = "safetycatch"
    table: str = ""
    mode_parameter: str = ""
    slack_secret: str = ""
    slack_api_url: str | None = None
    member_role: str = DEFAULT_MEMBER_ROLE
    external_id: str | None = None

    @classmethod
    def for_stage(cls, stage: str, use_environment: bool = False) -> Target:
        """The stage's names (.chalice/config.json when there is a checkout, else the convention); with
        ``use_environment`` the ``SAFETYCATCH_*`` settings override them. ``ValueError`` for an unknown stage."""
        env: dict[str, str] = {}
        app = "safetycatch"
        if iam.CONFIG.exists():
            config = json.loads(iam.CONFIG.read_text())
            if stage not in config.get("stages", {}):
                raise ValueError(f"doctor: no stage {stage!r} in .chalice/config.json "
                                 f"(stages: {', '.join(sorted(config.get('stages', {})))})")
            env, app = iam.stage_settings(stage, config)["env"], config.get("app_name", app)
        if use_environment:
            env = {**env, **{k: v for k, v in os.environ.items() if k.startswith("SAFETYCATCH_") and v}}
        return cls(stage=stage, app=app, table=env.get("SAFETYCATCH_TABLE", f"{app}-{stage}"),
                   mode_parameter=env.get("SAFETYCATCH_MODE_PARAMETER", f"/{app}/{stage}/mode"),
                   slack_secret=env.get("SAFETYCATCH_SLACK_SECRET", f"{app}/{stage}/slack"),
                   slack_api_url=os.environ.get("SAFETYCATCH_SLACK_API_URL") or None,  # where Slack is, any stage
                   member_role=env.get("SAFETYCATCH_MEMBER_ROLE", DEFAULT_MEMBER_ROLE),
                   external_id=env.get("SAFETYCATCH_EXTERNAL_ID") or None)

    def function(self, handler: str) -> str:
        """The deployed function's name (as ``chalice deploy`` and ``make package`` name it)."""
        return f"{self.app}-{self.stage}-{handler}"


class Checker:
    """Runs the checks with one boto3 session (the operator's credentials) in one region."""

    def __init__(self, session: Any, target: Target) -> None:
        self.session, self.target = session, target
        self.region = session.region_name or "us-east-1"
        self._clients: dict[tuple[str, str], Any] = {}
        self.account = self.client("sts").get_caller_identity()["Account"]

    def client(self, service: str, region: str | None = None, session: Any = None) -> Any:
        key = (service, region or self.region)
        if session is not None:
            return session.client(service, region_name=region or self.region, config=RETRY_CONFIG)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=key[1], config=RETRY_CONFIG)
        return self._clients[key]

    def guarded(self, item_id: str, check: Callable[[], Item]) -> Item:
        """Run one check; an AWS error it did not expect makes the item ``cannot-check``, never ``ok``."""
        try:
            return check()
        except (ClientError, BotoCoreError) as exc:
            why = "not available here" if is_unsupported(exc) else (error_code(exc) or type(exc).__name__)
            return Item(item_id, "cannot-check", f"{getattr(exc, 'operation_name', 'AWS')} failed ({why})")


def run(session: Any, target: Target, all_accounts: bool = False) -> list[Item]:
    """Every check, in checklist order."""
    checker = Checker(session, target)
    items = [checker.guarded("cloudtrail", lambda: check_trail(checker))]
    items += check_rules(checker)
    items.append(checker.guarded("iam-forwarding", lambda: check_iam_forwarding(checker)))
    items.append(checker.guarded("state-table", lambda: check_table(checker)))
    items.append(checker.guarded("mode-parameter", lambda: check_mode(checker)))
    secret = checker.guarded("slack-secret", lambda: check_secret(checker))
    items.append(secret)
    items.append(check_slack_auth(checker, secret))
    items.append(checker.guarded("layer", lambda: check_layer(checker)))
    items.append(checker.guarded("reservations", lambda: check_reservations(checker)))
    items += _event_path_items(checker)
    if all_accounts:
        items += check_members(checker)
    return items


def _event_path_items(checker: Checker) -> list[Item]:
    from safetycatch.doctor_events import event_path_items  # its own module (issue 22): what the event path can see

    return event_path_items(checker)


# -- the trail ---------------------------------------------------------------------------------------------


def _logs_management_writes(selectors: dict[str, Any]) -> bool:
    """Event selectors that log management write events. A trail without selectors logs every management
    event (AWS's default; moto returns none for such a trail)."""
    basic, advanced = selectors.get("EventSelectors") or [], selectors.get("AdvancedEventSelectors") or []
    if not basic and not advanced:
        return True
    if any(s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") in ("All", "WriteOnly")
           for s in basic):
        return True
    for selector in advanced:
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
        if "Management" in (fields.get("eventCategory") or {}).get("Equals", []) and \
                "true" not in (fields.get("readOnly") or {}).get("Equals", []):
            return True
    return False


def check_trail(checker: Checker) -> Item:
    trails = checker.client("cloudtrail").describe_trails(includeShadowTrails=True).get("trailList", [])
    here = [t for t in trails if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == checker.region]
    reasons = []
    fixes = []
    for trail in here:
        home = checker.client("cloudtrail", trail.get("HomeRegion"))  # a shadow trail is read in its home region
        name = trail.get("TrailARN") or trail["Name"]
        where = f"--region {trail.get('HomeRegion') or checker.region}"
        if not home.get_trail_status(Name=name).get("IsLogging"):
            reasons.append(f"{trail['Name']} is not logging")
            fixes.append(f"aws cloudtrail start-logging --name {name} {where}")
        elif not _logs_management_writes(home.get_event_selectors(TrailName=name)):
            reasons.append(f"{trail['Name']} does not log management write events")
            fixes.append(f"aws cloudtrail put-event-selectors --trail-name {name} {where} --event-selectors "
                         "'[{\"ReadWriteType\": \"All\", \"IncludeManagementEvents\": true}]'")
        else:
            kind = "organization" if trail.get("IsOrganizationTrail") else "account"
            return Item("cloudtrail", "ok", f"{kind} trail {trail['Name']} logs management write events in "
                                            f"{checker.region}")
    detail = "; ".join(reasons) or f"no trail covers {checker.region}"
    return Item("cloudtrail", "missing", f"{detail}: EventBridge gets no CloudTrail change events, the bot sees "
                                         "nothing", fixes[0] if fixes else NO_TRAIL_FIX)


# -- rules ---------------------------------------------------------------------------------------------------


def bot_rules() -> dict[str, dict[str, Any]]:
    """Handler -> the EventBridge pattern app.py subscribes it to."""
    return {**CLOUDTRAIL_RULES, **EVIDENCE_RULES}


def _rules_to(events: Any, target_arn: str) -> list[dict[str, Any]]:
    names = [n for page in events.get_paginator("list_rule_names_by_target").paginate(TargetArn=target_arn)
             for n in page.get("RuleNames", [])]
    return [events.describe_rule(Name=name) for name in names]


def _same(rule: dict[str, Any], pattern: dict[str, Any] | None, schedule: str | None) -> bool:
    if schedule is not None:
        return rule.get("ScheduleExpression") == schedule
    return bool(rule.get("EventPattern")) and json.loads(rule["EventPattern"]) == pattern


def _rule_item(item_id: str, rules: list[dict[str, Any]], pattern: dict[str, Any] | None, what: str, fix: str,
               schedule: str | None = None, region: str = "") -> Item:
    matching = [r for r in rules if _same(r, pattern, schedule)]
    enabled = [r for r in matching if r.get("State") == "ENABLED"]
    if enabled:
        return Item(item_id, "ok", f"rule {enabled[0]['Name']} sends {what}")
    if matching:
        name = matching[0]["Name"]
        return Item(item_id, "missing", f"rule {name} is {matching[0].get('State')}",
                    f"aws events enable-rule --name {name}" + (f" --region {region}" if region else ""))
    stale = f" ({len(rules)} rule(s) target it with other events)" if rules else ""
    return Item(item_id, "missing", f"no rule sends {what}{stale}", fix)


def check_rules(checker: Checker) -> list[Item]:
    events, target = checker.client("events"), checker.target
    items = []
    wanted: list[tuple[str, dict[str, Any] | None, str | None]] = [
        *((handler, pattern, None) for handler, pattern in bot_rules().items()), (SWEEP[0], None, SWEEP[1])]
    for handler, pattern, schedule in wanted:
        function = target.function(handler)
        arn = f"arn:aws:lambda:{checker.region}:{checker.account}:function:{function}"

        def one(arn: str = arn, handler: str = handler, pattern: Any = pattern, schedule: Any = schedule,
                function: str = function) -> Item:
            return _rule_item(f"rule:{handler}", _rules_to(events, arn), pattern,
                              f"{'its schedule' if schedule else 'its events'} to {function}",
                              DEPLOY_FIX.format(stage=target.stage), schedule, checker.region)

        items.append(checker.guarded(f"rule:{handler}", one))
    return items


def check_iam_forwarding(checker: Checker) -> Item:
    if checker.region == IAM_REGION:
        return Item("iam-forwarding", "ok", f"not needed: the bot runs in {IAM_REGION}, where IAM changes are "
                                            "recorded")
    bus = f"arn:aws:events:{checker.region}:{checker.account}:event-bus/default"
    rules = _rules_to(checker.client("events", IAM_REGION), bus)
    return _rule_item("iam-forwarding", rules, cloudtrail_pattern(GLOBAL_SOURCES),
                      f"IAM changes from {IAM_REGION} to this region's bus",
                      f"aws cloudformation deploy --region {IAM_REGION} --template-file deploy/iam-forwarder.yaml "
                      f"--stack-name {checker.target.app}-{checker.target.stage}-iam-events --capabilities "
                      f"CAPABILITY_IAM --parameter-overrides BotRegion={checker.region}", region=IAM_REGION)


# -- state, mode, Slack, layer -------------------------------------------------------------------------------


def check_table(checker: Checker) -> Item:
    name, dynamodb = checker.target.table, checker.client("dynamodb")
    try:
        status = dynamodb.describe_table(TableName=name)["Table"].get("TableStatus")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return Item("state-table", "missing", f"table {name} not found in {checker.region}",
                    f"SAFETYCATCH_TABLE={name} AWS_DEFAULT_REGION={checker.region} safetycatch init (local runs), or "
                    + DEPLOY_FIX.format(stage=checker.target.stage))
    dynamodb.get_item(TableName=name, Key=PROBE_KEY)  # readable, not only described
    if status != "ACTIVE":
        return Item("state-table", "missing", f"table {name} is {status}", "wait until it is ACTIVE")
    return Item("state-table", "ok", f"table {name} is ACTIVE and readable")


def check_mode(checker: Checker) -> Item:
    name = checker.target.mode_parameter
    fix = f"aws ssm put-parameter --name {name} --type String --value enforce --overwrite --region {checker.region}"
    try:
        value = str(checker.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]).strip().lower()
    except ClientError as exc:
        if error_code(exc) != "ParameterNotFound":
            raise
        return Item("mode-parameter", "missing", f"parameter {name} not found: the bot falls back to "
                                                 "SAFETYCATCH_MODE", fix)
    if value not in GLOBAL_MODES:
        return Item("mode-parameter", "missing", f"parameter {name} is {value[:20]!r}: the bot is OFF until it is "
                                                 f"one of {', '.join(GLOBAL_MODES)}", fix)
    return Item("mode-parameter", "ok", f"parameter {name} = {value}")


def check_secret(checker: Checker) -> Item:
    name = checker.target.slack_secret
    shape = "'{\"bot_token\": \"xoxb-...\", \"signing_secret\": \"...\"}'"
    fix = (f"aws secretsmanager put-secret-value --secret-id {name} --region {checker.region} --secret-string "
           f"{shape}")
    try:
        raw = checker.client("secretsmanager").get_secret_value(SecretId=name).get("SecretString") or ""
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return Item("slack-secret", "missing", f"secret {name} not found",
                    f"aws secretsmanager create-secret --name {name} --region {checker.region} --secret-string {shape}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    empty = [k for k in ("bot_token", "signing_secret") if not (isinstance(value, dict) and value.get(k))]
    if empty:
        return Item("slack-secret", "missing", f"secret {name} has no {' and no '.join(empty)}", fix)
    return Item("slack-secret", "ok", f"secret {name} holds a bot token and a signing secret")


def check_slack_auth(checker: Checker, secret: Item) -> Item:
    """Slack's ``auth.test`` with the secret's token (never printed)."""
    if secret.status != "ok":
        return Item("slack-auth", "cannot-check", "no usable Slack token to test (see slack-secret)")
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from chalicelib.slack.client import api_base_url

    raw = checker.client("secretsmanager").get_secret_value(SecretId=checker.target.slack_secret)["SecretString"]
    client = WebClient(token=json.loads(raw)["bot_token"], base_url=api_base_url(checker.target.slack_api_url),
                       timeout=10)
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        return Item("slack-auth", "missing", f"auth.test refused the token ({exc.response.get('error')})",
                    "put the Slack app's current bot token in the secret (reinstall the app if it was revoked)")
    except OSError as exc:
        return Item("slack-auth", "cannot-check", f"Slack is not reachable from here ({type(exc).__name__})")
    return Item("slack-auth", "ok", f"auth.test ok: {answer.get('user')} in {answer.get('team')}")


def check_layer(checker: Checker) -> Item:
    found = layer.check(checker.client("ssm"), checker.client("lambda"))
    fix = "" if found.status != "missing" else (f"pin a Powertools release published in {checker.region} "
                                                "(safetycatch/build/layer.py and requirements-dev.txt)")
    return Item("layer", found.status, found.detail or f"Powertools {layer.POWERTOOLS_VERSION} layer", fix)


# -- member accounts ----------------------------------------------------------------------------------------


def check_members(checker: Checker) -> list[Item]:
    items = []
    skipped = accounts.uncovered_management_account(checker.session, checker.account)
    for account in organization_accounts(checker.session):
        if account == skipped:  # the plan, said once: not a missing member
            items.append(Item(f"management-account:{account}", "ok", f"{account}: {accounts.NOT_COVERED}"))
        elif account != checker.account:
            items += check_member(checker, account)
    return items


def check_member(checker: Checker, account: str) -> list[Item]:
    """The member's remediation role can be assumed (and is there), and its forwarding rules exist."""
    role = checker.target.member_role
    fix = ("deploy deploy/member-account.yaml to it (the safetycatch-member StackSet), and run doctor as the "
           "bot's role, which the member role trusts")
    session = accounts.assumed_session(checker.session, account, role, checker.target.external_id, checker.region)
    try:
        checker.client("iam", session=session).get_role(RoleName=role)
    except (ClientError, BotoCoreError) as exc:
        why = error_code(exc) or type(exc).__name__
        return [Item(f"member-role:{account}", "missing", f"cannot assume {role} in {account} ({why})", fix),
                *(Item(f"{kind}:{account}", "cannot-check", "the member role cannot be assumed")
                  for kind in ("member-rules", "member-dead-letters"))]
    items = [Item(f"member-role:{account}", "ok", f"{role} in {account} can be assumed")]
    items.append(checker.guarded(f"member-rules:{account}", lambda: _member_rules(checker, session, account)))
    items.append(checker.guarded(f"member-dead-letters:{account}",
                                 lambda: _member_dead_letters(checker, session, account)))
    return items


def _member_rules(checker: Checker, session: Any, account: str) -> Item:
    bus = f"arn:aws:events:{checker.region}:{checker.account}:event-bus/default"
    rules = _rules_to(checker.client("events", session=session), bus)
    absent = [logical for logical, (_, pattern) in member_template.forwarding_rules().items()
              if not any(r.get("State") == "ENABLED" and _same(r, pattern, None) for r in rules)]
    if absent:
        return Item(f"member-rules:{account}", "missing", f"{account} does not forward {', '.join(absent)} to the "
                                                          f"bot's bus in {checker.region} (absent, disabled or out of "
                                                          "date)", "update the safetycatch-member StackSet instance "
                                                                   f"of {account} (deploy/member-account.yaml)")
    return Item(f"member-rules:{account}", "ok", f"{account} forwards every watched change to the bot's bus")


def _member_dead_letters(checker: Checker, session: Any, account: str) -> Item:
    """What the member's forwarding rules could not put on the bot's bus, kept in their dead-letter queue
    (safetycatch/build/member_template.py): none is ok; some is missing events, with how to find out why."""
    item_id, name = f"member-dead-letters:{account}", member_template.MEMBER_DEAD_LETTERS_NAME.format(
        stage=checker.target.stage)
    sqs = checker.client("sqs", session=session)
    waiting = queue_depth(sqs, name)
    if waiting is None:
        return Item(item_id, "missing", f"{account} keeps no dead letters of its forwarding rules in {checker.region} "
                                        f"({name} absent): an event it cannot forward is dropped",
                    f"update the safetycatch-member StackSet instance of {account} (deploy/member-account.yaml)")
    if waiting:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]  # for the fix's command
        return Item(item_id, "missing", f"{waiting} event(s) {account} could not forward to the bot's bus wait in "
                                        f"{name} ({checker.region}, kept 14 days)",
                    "as the member, read why (`aws sqs receive-message --queue-url "
                    f"{url} --message-attribute-names All`: ERROR_CODE, ERROR_MESSAGE), fix it (the bot's event-bus "
                    "policy must let the organisation put events), then purge the queue: the next sweep "
                    "re-evaluates every function they name")
    return Item(item_id, "ok", f"{account} has no event it could not forward")


# -- the bot's own reserved concurrency -----------------------------------------------------------------------

UNRESERVED_FLOOR = 100  # Lambda refuses a reservation that leaves fewer unreserved executions in the account
_HANDLER = re.compile(r"^@app\.(?:on_cw_event|schedule|on_sqs_message|on_sns_message|lambda_function)\(.*?"
                      r"name=(?:\"(\w+)\"|([\w.]+))", re.MULTILINE)
_RESERVED = re.compile(r"ReservedConcurrentExecutions:\s*(\d+)")


def bot_reservations(root: Path = iam.CONFIG.parent.parent) -> dict[str, int]:
    """The concurrency the bot's stack reserves, by function: app.py's handlers at .chalice/config.json's
    ``reserved_concurrency`` (or their own), the API handler's, and the fixed ones of deploy/resources.yaml.

    Example:
        >>> sum(bot_reservations().values())
        76
    """
    config = json.loads((root / ".chalice" / "config.json").read_text())
    default, own = int(config.get("reserved_concurrency", 0)), config.get("lambda_functions", {})
    app = (root / "app.py").read_text()
    handlers = [m[1] or _constant(m[2], app) for m in _HANDLER.finditer(app)]
    reserved = {name: int(own.get(name, {}).get("reserved_concurrency", default)) for name in handlers}
    reserved["api_handler"] = int(own.get("api_handler", {}).get("reserved_concurrency", default))
    for n, value in enumerate(_RESERVED.findall((root / "deploy" / "resources.yaml").read_text())):
        reserved[f"resources.yaml#{n + 1}"] = int(value)
    return reserved


def _constant(dotted: str, app: str) -> str:
    """A handler name app.py takes from a module constant (``slack_routes.WORKER_NAME``), in the module app.py's
    ``from chalicelib.<package> import ...`` names."""
    module, name = dotted.rsplit(".", 1)
    package = next((m[1] for m in re.finditer(r"^from (chalicelib[\w.]*) import (.+)$", app, re.MULTILINE)
                    if module in re.split(r"[\s,()]+", m[2])), "chalicelib")
    return str(getattr(importlib.import_module(f"{package}.{module}"), name))


def check_reservations(checker: Checker) -> Item:
    """Whether the bot's reservations fit the account: Lambda keeps at least 100 executions unreserved (new
    accounts may have a concurrency limit of 10, where no reservation fits). GetAccountSettings, in the region;
    the reservations are the deployed stack's parameters (what a redeploy keeps), else .chalice/config.json's."""
    settings = checker.client("lambda").get_account_settings()["AccountLimit"]
    limit, unreserved = int(settings["ConcurrentExecutions"]), int(settings["UnreservedConcurrentExecutions"])
    reserved, source = planned_reservations(checker)
    planned = sum(reserved.values())
    deployed = _deployed_reservations(checker)
    left = unreserved + deployed - planned
    detail = (f"the stack reserves {planned} concurrent executions ({source}); the account's limit is {limit}, "
              f"{unreserved} unreserved now{f' ({deployed} of them reserved by the bot already)' if deployed else ''}")
    if left >= UNRESERVED_FLOOR:
        return Item("reservations", "ok", f"{detail}: {left} stay unreserved")
    return Item("reservations", "missing", f"{detail}: only {left} would stay unreserved, Lambda needs "
                f"{UNRESERVED_FLOOR} and refuses the deploy",
                f"ask for more concurrency (Service Quotas, Lambda 'Concurrent executions', L-B99A9384: at least "
                f"{planned + UNRESERVED_FLOOR + limit - unreserved - deployed}), or deploy smaller reservations "
                "(make deploy RESERVED=n API_RESERVED=n SWEEP_RESERVED=n; README: what an account needs)")


def planned_reservations(checker: Checker) -> tuple[dict[str, int], str]:
    """The reservations a deploy makes, by function, and where they come from: the deployed stack's
    ``*ReservedConcurrency`` parameters (``aws cloudformation deploy`` keeps them unless overridden), else the
    defaults of .chalice/config.json (``bot_reservations``)."""
    reserved = bot_reservations()
    try:
        stacks = checker.client("cloudformation").describe_stacks(
            StackName=f"{checker.target.app}-{checker.target.stage}")["Stacks"]
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        return reserved, ".chalice/config.json"
    values = {p["ParameterKey"]: int(p["ParameterValue"]) for p in stacks[0].get("Parameters", [])
              if p["ParameterKey"].endswith(identities.RESERVATION_PARAMETER)}
    if not values:  # a stack deployed before the reservations were parameters
        return reserved, ".chalice/config.json"
    config = json.loads(iam.CONFIG.read_text())
    for name in reserved:
        if not name.startswith("resources.yaml"):  # the dead-letter notifier's fixed slot
            reserved[name] = values.get(identities.reservation_parameter(name, config), reserved[name])
    return reserved, f"stack {stacks[0]['StackName']}'s parameters"


def _deployed_reservations(checker: Checker) -> int:
    """What the bot's deployed functions reserve already (0 before the first deploy)."""
    lam, total = checker.client("lambda"), 0
    for name in bot_reservations():
        if name.startswith("resources.yaml"):
            continue
        try:
            total += int(lam.get_function_concurrency(FunctionName=identities.function_name(checker.target.stage, name))
                         .get("ReservedConcurrentExecutions") or 0)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    return total


def to_json(items: list[Item]) -> dict[str, Any]:
    """The contract: ``{"checks": [{"id", "status", "detail", "fix"}]}``."""
    return {"checks": [asdict(item) for item in items]}


# -- the command ---------------------------------------------------------------------------------------------


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``safetycatch doctor [--stage S] [--all-accounts] [--format table|json]`` (and ``--profile``)."""
    doctor = sub.add_parser("doctor", parents=parents, help="check what a real account needs (trail, rules, "
                            "table, mode, Slack, layer, member roles); exit 1 when something is missing")
    doctor.add_argument("--stage", help="the stage whose resources to check (default dev; without it the "
                                        "SAFETYCATCH_* settings override the stage's names)")
    doctor.add_argument("--all-accounts", action="store_true",
                        help="also check every member account's role and forwarding rules")
    doctor.add_argument("--format", choices=("table", "json"), default="table")


def cmd_doctor(args: argparse.Namespace) -> int:
    """Exit 0 when every item is present (``cannot-check`` items are listed, not failed), 1 when one is missing."""
    import boto3

    from safetycatch import render
    from safetycatch.common import UsageError

    try:
        target = Target.for_stage(args.stage or "dev", use_environment=not args.stage)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    items = run(boto3.session.Session(profile_name=getattr(args, "profile", None) or None), target,
                all_accounts=args.all_accounts)
    data = to_json(items)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        render.doctor_table(data["checks"])
    sys.stdout.flush()
    return 1 if any(item.status == "missing" for item in items) else 0
