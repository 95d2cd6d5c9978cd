"""Never lose an event: on-failure destinations, dead-letter queues and retry policies in the packaged template.

``make package`` (safetycatch/build/steps.py) calls :func:`add_dead_letters` on Chalice's SAM template, after the
merge of deploy/resources.yaml, which holds the queue (``DeadLetterQueue``: SSE-SQS encrypted, messages kept 14 days),
its depth alarm and the notifier that posts the alarm to Slack. This module adds what refers to Chalice's
resources:

* every asynchronously invoked function gets ``EventInvokeConfig``: a deliberate maximum event age and retry
  count (:data:`EVENT_HANDLER`, :data:`SCHEDULE`, :data:`SLACK_WORKER`, reasons below) and an on-failure
  destination, the queue. Lambda puts an invocation record there (the event under ``requestPayload``) once
  the retries are spent or the event is too old, including when the bot was throttled all along;
* every EventBridge rule target gets the queue as its dead-letter queue and a retry policy
  (:data:`RULE_RETRY`): EventBridge puts the event itself there when it cannot deliver it to Lambda at all
  (the function gone, permissions, the Invoke API throttled for an hour). Chalice writes ``CloudWatchEvent``
  events, which have no such properties in SAM; they become ``EventBridgeRule`` events (same rule, same
  pattern, same logical id), whose ``DeadLetterConfig`` and ``RetryPolicy`` SAM passes to the rule's target;
* a queue policy lets exactly those rules (``aws:SourceArn``) send to the queue;
* alarms on the queue itself failing: Lambda's ``DestinationDeliveryFailures`` of those functions and
  EventBridge's ``InvocationsFailedToBeSentToDlq`` of those rules (an event that could reach neither the bot nor
  the queue is lost: a queue policy or permission broken). They go to the depth alarm's topic, so the same
  notifier says so in Slack (:func:`undelivered_alarms`).

The functions' own permission (``sqs:SendMessage`` on the queue, for the destination) is in the stage's IAM
policy (safetycatch/build/iam.py, ``DESTINATION_ACTIONS``). ``safetycatch redrive`` reads the queue back.

Example:
    >>> template = {"Resources": {"OnChange": {"Type": "AWS::Serverless::Function", "Properties": {
    ...     "Events": {"OnChangeEvent": {"Type": "CloudWatchEvent", "Properties": {"Pattern": {}}}}}}}}
    >>> done = add_dead_letters(template, {"OnChange": "on_change"})["Resources"]
    >>> done["OnChange"]["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"]
    2
    >>> done["OnChange"]["Properties"]["Events"]["OnChangeEvent"]["Type"]
    'EventBridgeRule'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.bot.slack_routes import WORKER_NAME

QUEUE = "DeadLetterQueue"  # logical id in deploy/resources.yaml
QUEUE_POLICY = "DeadLetterQueueRulesPolicy"
QUEUE_ARN = {"Fn::GetAtt": [QUEUE, "Arn"]}


@dataclass(frozen=True)
class AsyncSettings:
    """Lambda's asynchronous invocation settings for one kind of function."""

    max_retries: int  # MaximumRetryAttempts, 0-2 (Lambda waits ~1 min, then ~2 min, between attempts)
    max_age_s: int  # MaximumEventAgeInSeconds, 60-21600 (the default is 21600, 6 hours)

    def event_invoke_config(self) -> dict[str, Any]:
        return {"MaximumRetryAttempts": self.max_retries, "MaximumEventAgeInSeconds": self.max_age_s,
                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": QUEUE_ARN}}}


# The event handlers (config changes, dependency changes, runaway alarms, Health):
# * 2 retries, the most Lambda allows. A failure that reaches Lambda is transient by the rule in
#   chalicelib/core/aws.py (permanent ones are recorded and return), botocore has already retried it 8 times, and a
#   retry is safe: idempotency on the CloudTrail eventID, a fresh re-read, one writer per fix. The 1 + 2 minute
#   back-off outlasts an API's throttling burst.
# * 1 hour. Events wait in Lambda's queue while the reserved concurrency (10) is busy: the largest deploy we
#   size for (10,000 events, `make bench`) drains in minutes, so an hour is more than ten times that. An event
#   still waiting after an hour means the bot is not keeping up (concurrency at 0, the account's pool
#   exhausted, a crash loop): it then goes to the dead-letter queue and its alarm reaches Slack after an hour,
#   not after Lambda's default of 6 hours in silence. Late is still correct (the handler re-reads the function),
#   so nothing is gained by dropping events sooner.
EVENT_HANDLER = AsyncSettings(max_retries=2, max_age_s=3600)
# The 6-hourly sweep: 1 retry covers a transient failure at start; a second would mostly repeat a deterministic
# one (a timeout on a large estate) at the cost of a whole-estate read. An hour late is still worth running;
# later than that the next sweep is closer than the retry, and the dead-letter queue says a sweep was missed.
SCHEDULE = AsyncSettings(max_retries=1, max_age_s=3600)
# The Slack worker carries out an approver's click. It never raises (failures are told to the clicker), so only
# a crash, a timeout or throttling reaches Lambda: 2 retries. 15 minutes: a human is waiting for the message to
# update; after that the click goes to the dead-letter queue (the approval stays PENDING, `redrive` reports
# it and the approver clicks again) rather than taking effect long after they looked away.
SLACK_WORKER = AsyncSettings(max_retries=2, max_age_s=900)
# EventBridge -> Lambda delivery (each rule's target). Delivery fails only when Lambda refuses the Invoke call
# itself (throttled Invoke API, a service error, the function or the permission gone). Retry as often as
# EventBridge's exponential back-off allows (185, its maximum) but for one hour, not its default of 24: the
# dead-letter queue and its alarm then say so the same day. Permanent failures skip the retries.
RULE_RETRY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600}

EVENTBRIDGE_TYPES = {"CloudWatchEvent", "EventBridgeRule", "Schedule"}
POLLED_TYPES = {"SQS", "Kinesis", "DynamoDB", "MSK", "MQ", "SelfManagedKafka", "DocumentDB"}  # their own DLQs
SYNCHRONOUS_TYPES = {"Api", "HttpApi"}


def async_settings(name: str, events: dict[str, Any]) -> AsyncSettings | None:
    """How a function is invoked decides its settings: None for the API handler and polled functions.

    Example:
        >>> async_settings("scheduled_sweep", {"E": {"Type": "Schedule"}}) == SCHEDULE
        True
        >>> async_settings("api_handler", {}) is None
        True
    """
    types = {str(e.get("Type")) for e in events.values()}
    if name == WORKER_NAME:
        return SLACK_WORKER
    if "Schedule" in types:
        return SCHEDULE
    if name == "api_handler" or (types and types <= POLLED_TYPES | SYNCHRONOUS_TYPES):
        return None
    return EVENT_HANDLER  # EventBridge rules, SNS, S3, or invoked by the bot itself with InvocationType=Event


def _dead_letter_event(event: dict[str, Any]) -> None:
    """Give one EventBridge-fed event the queue and the retry policy (a CloudWatchEvent becomes an
    EventBridgeRule: the same AWS::Events::Rule, with the properties SAM adds only to the newer type)."""
    if event["Type"] == "CloudWatchEvent":
        event["Type"] = "EventBridgeRule"
    props = event.setdefault("Properties", {})
    props["DeadLetterConfig"] = {"Arn": QUEUE_ARN}
    props["RetryPolicy"] = dict(RULE_RETRY)


def add_dead_letters(template: dict[str, Any], resources_by_id: dict[str, str]) -> dict[str, Any]:
    """Destinations, dead-letter queues and retry policies for every asynchronously invoked function of the
    template, and the queue policy for its rules (see the module doc). ``resources_by_id`` maps SAM logical ids
    to Chalice's function names (safetycatch/build/steps.py ``chalice_resources``)."""
    rules: list[str] = []
    functions: list[str] = []
    roles: list[Any] = []  # the roles the destinations send with (Lambda delivers with the function's role)
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        events = props.get("Events") or {}
        settings = async_settings(resources_by_id.get(logical, logical), events)
        if settings is None:
            continue
        props["EventInvokeConfig"] = settings.event_invoke_config()
        functions.append(logical)
        if props.get("Role") and props["Role"] not in roles:
            roles.append(props["Role"])
        for event_name, event in events.items():
            if event.get("Type") in EVENTBRIDGE_TYPES:
                _dead_letter_event(event)
                rules.append(logical + event_name)  # SAM names the AWS::Events::Rule it generates so
    if rules:
        template["Resources"][QUEUE_POLICY] = rules_may_send(sorted(rules), roles=roles)
    if ALARM_TOPIC in template["Resources"]:
        template["Resources"].update(undelivered_alarms(sorted(functions), sorted(rules)))
    scheduler = next((template["Resources"][logical]["Properties"].get("Role") for logical, name
                      in resources_by_id.items() if name == SCHEDULER and logical in template["Resources"]), None)
    if SWEEP_QUEUE in template["Resources"] and scheduler:
        template["Resources"][SWEEP_QUEUE_POLICY] = only_role_sends(SWEEP_QUEUE, scheduler)
    return template


SCHEDULER = "scheduled_sweep"  # app.py: the only sender of the sweep queue's work items
SWEEP_QUEUE, SWEEP_QUEUE_POLICY = "SweepQueue", "SweepQueuePolicy"  # deploy/resources.yaml


def only_role_sends(queue: str, role: Any) -> dict[str, Any]:
    """A queue policy denying ``sqs:SendMessage`` on ``queue`` (a logical id) to every principal but ``role``
    (the scheduler's): a work item on the sweep queue is then the bot's own (the worker still checks its run)."""
    return {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": queue}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "OnlyTheSchedulerSends", "Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [role]}},
        }]},
    }}


ALARM_TOPIC = "DeadLetterAlarmTopic"  # deploy/resources.yaml: the depth alarm's topic, the notifier's subscription
UNDELIVERED_SUFFIX = "-undelivered"  # the notifier tells these alarms apart by it (deploy/resources.yaml)
MAX_ALARM_METRICS = 10  # a metric math alarm reads at most 10 metrics (CloudWatch alarm limits, a hard limit)


def undelivered_alarms(functions: list[str], rules: list[str]) -> dict[str, Any]:
    """Alarms (logical id -> resource) that fire when a function's on-failure destination or a rule's dead-letter
    queue could not take an event: the sum of the failures of at most :data:`MAX_ALARM_METRICS` functions or rules
    per alarm, over five minutes, above 0.

    Example:
        >>> alarms = undelivered_alarms(["OnConfigChange"], ["OnConfigChangeEvent"])
        >>> sorted(alarms)
        ['UndeliveredDestinations1', 'UndeliveredRules1']
        >>> alarms["UndeliveredRules1"]["Properties"]["Metrics"][-1]["Expression"]
        'SUM(METRICS())'
    """
    kinds = (("Destinations", "AWS/Lambda", "DestinationDeliveryFailures", "FunctionName", functions),
             ("Rules", "AWS/Events", "InvocationsFailedToBeSentToDlq", "RuleName", rules))
    alarms: dict[str, Any] = {}
    for kind, namespace, metric, dimension, sources in kinds:
        for number, start in enumerate(range(0, len(sources), MAX_ALARM_METRICS), 1):
            watched = sources[start:start + MAX_ALARM_METRICS]
            alarms[f"Undelivered{kind}{number}"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
                "AlarmName": {"Fn::Sub": f"safetycatch-${{Stage}}-{kind.lower()}-{number}{UNDELIVERED_SUFFIX}"},
                "AlarmDescription": f"safetycatch lost events: {metric} (the dead-letter queue refused them; check "
                                    "its policy and the senders' sqs:SendMessage)",
                "Metrics": [*({"Id": f"m{i}", "ReturnData": False, "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric,
                               "Dimensions": [{"Name": dimension, "Value": {"Ref": logical}}]},
                    "Period": 300, "Stat": "Sum"}} for i, logical in enumerate(watched)),
                    {"Id": "lost", "Expression": "SUM(METRICS())", "ReturnData": True}],
                "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": ALARM_TOPIC}], "OKActions": [{"Ref": ALARM_TOPIC}],
            }}
    return alarms


def rules_may_send(rules: list[str], queue: str = QUEUE, roles: list[Any] | None = None) -> dict[str, Any]:
    """The queue policy: EventBridge may send to ``queue`` (a logical id) on behalf of these rules only; and,
    with ``roles`` (the functions' roles, with which Lambda delivers their on-failure records; ``[]`` where only
    rules feed the queue, as in the member stacks), every other sender is denied ``sqs:SendMessage``, also in the
    bot's own account, where an identity policy alone would let anyone with ``sqs:SendMessage`` on ``*`` write a
    "dead letter" that ``redrive`` reads.

    A Deny's conditions must all match: it applies when the request comes from none of the rules (``aws:SourceArn``,
    absent for an IAM principal: a negated operator then matches) and from none of the roles (``aws:PrincipalArn``).
    """
    source = [{"Fn::GetAtt": [rule, "Arn"]} for rule in rules]
    statements: list[dict[str, Any]] = [{
        "Sid": "EventBridgeRulesDeadLetters", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": [queue, "Arn"]},
        "Condition": {"ArnEquals": {"aws:SourceArn": source}},
    }]
    if roles is not None:
        fresh = [{"Fn::GetAtt": [rule, "Arn"]} for rule in rules]  # not the same objects: YAML would alias them
        senders: dict[str, Any] = {"aws:SourceArn": fresh, **({"aws:PrincipalArn": list(roles)} if roles else {})}
        statements.append({
            "Sid": "OnlyTheRulesAndTheDestinationsSend" if roles else "OnlyTheRulesSend", "Effect": "Deny",
            "Principal": "*", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Condition": {"ArnNotEquals": senders},
        })
    return {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": queue}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
    }}
