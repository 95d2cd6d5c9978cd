"""safetycatch: the map of the bot. Thin handlers only; the work lives in chalicelib/.

* ``on_config_change``: CloudTrail config changes of Lambda functions and API Gateway integrations
  (EventBridge rule) → re-read the function, evaluate the policies, fix / ask / notify.
* ``on_runaway_alarm`` / ``on_lambda_health``: a managed ``safetycatch-runaway-*`` alarm going to ALARM, or an
  AWS Health notice about Lambda → the kill-switch throttles the runaway function to 0.
* ``on_dependency_change``: VPC routing, execution-role / managed policy and S3 notification changes →
  re-evaluate the functions they concern (vpc-no-egress, recursive-trigger). IAM events exist in us-east-1
  only: a bot elsewhere gets them through a forwarding rule there, and re-evaluates every region it covers.
* ``scheduled_sweep``: every 6 hours, the whole region as ``safetycatch scan --fix`` (metrics, logs, drift), or,
  with a sweep queue, one SQS message per (account, region) of the organisation to ``sweep_worker``.
* ``sweep_worker``: sweeps one scope per message (partial batch failures, dead-letter queue, a digest per run).
* ``slack_actions`` / ``slack_commands``: Slack buttons and ``/safetycatch`` (verified, authorised, handed over).
* ``slack_worker``: carries a Slack decision out (invoked asynchronously by the routes).
"""

from types import ModuleType

from chalice import Chalice, Rate, Response

from chalicelib.core import observability
from chalicelib.intake.events import CLOUDTRAIL_RULES
from chalicelib.killswitch.evidence import EVIDENCE_RULES

app = Chalice(app_name="safetycatch")
SWEEP_QUEUE = "safetycatch-sweep"
SWEEP_CONCURRENCY = 10
observability.install(app)  # Powertools Logger context, Tracer and Metrics around every handler

# Every rule pattern comes from chalicelib: the one list of watched CloudTrail changes (chalicelib/intake/events.py,
# which the member accounts' and the us-east-1 forwarding rules share) and the evidence rules.
CONFIG_CHANGES = CLOUDTRAIL_RULES["on_config_change"]  # Lambda and API Gateway changes of one function
DEPENDENCY_CHANGES = CLOUDTRAIL_RULES["on_dependency_change"]  # routing, role policies, bucket notifications


# Each Lambda function loads only what its handlers use, on its first event (Python caches the module after):
# the Slack routes never load boto3's engine, the event handlers never load slack-sdk (bench/import_time.py).
def _events() -> ModuleType:
    from chalicelib.bot import handlers

    return handlers


def _slack() -> ModuleType:
    from chalicelib.bot import slack_routes

    return slack_routes


@app.on_cw_event(CONFIG_CHANGES, name="on_config_change")
def on_config_change(event):
    """A function or its API integration changed: enforce the policies on it."""
    return _events().on_cloudtrail_change(event.to_dict(), event.context)


@app.on_cw_event(DEPENDENCY_CHANGES, name="on_dependency_change")
def on_dependency_change(event):
    """Routing, role or managed policies, or bucket notifications changed: re-evaluate the functions concerned."""
    return _events().on_cloudtrail_change(event.to_dict(), event.context)


@app.on_cw_event(EVIDENCE_RULES["on_runaway_alarm"], name="on_runaway_alarm")
def on_runaway_alarm(event):
    """A runaway alarm safetycatch manages went to ALARM: kill the function it watches."""
    return _events().on_runaway_evidence(event.to_dict(), event.context)


@app.on_cw_event(EVIDENCE_RULES["on_lambda_health"], name="on_lambda_health")
def on_lambda_health(event):
    """AWS Health told us about Lambda (a recursive loop among others): kill the looping function."""
    return _events().on_runaway_evidence(event.to_dict(), event.context)


@app.schedule(Rate(6, unit=Rate.HOURS), name="scheduled_sweep")
def scheduled_sweep(event):
    """What no change event announces (utilization, durations, /tmp errors, drift): sweep and enforce, or fan the
    organisation out to the sweep worker, one SQS message per (account, region)."""
    return _events().on_schedule(event.to_dict(), event.context)


# The queue is the stack's SweepQueue (safetycatch/build/steps.py points the event source at it); reserved concurrency
# in .chalice/config.json and the event source's maximum concurrency bound the fan-out.
@app.on_sqs_message(queue=SWEEP_QUEUE, batch_size=1, name="sweep_worker", maximum_concurrency=SWEEP_CONCURRENCY)
def sweep_worker(event):
    """One scope (account, region) of a sweep run per message; failed scopes come back as partial batch failures."""
    return _events().on_sweep_work(event.to_dict(), event.context)


# -- Slack: buttons, slash command, and the worker that carries decisions out ---------------------
SLACK_FORM = ["application/x-www-form-urlencoded"]


def _slack_request() -> tuple[bytes, dict[str, str]]:
    """The raw body (signatures are over the exact bytes) and headers of the current Slack request."""
    request = app.current_request
    assert request is not None, "Chalice sets current_request for every route call"
    body = request.raw_body
    return (body if isinstance(body, bytes) else str(body).encode()), dict(request.headers)


def _slack_response(answer: dict) -> Response:
    return Response(body=answer["body"], status_code=answer["status_code"], headers=answer["headers"])


@app.route("/slack/actions", methods=["POST"], content_types=SLACK_FORM)
def slack_actions():
    """Approve / Deny / Undo / Restore clicks: verify, authorise, hand to the worker, answer at once."""
    return _slack_response(_slack().on_actions(*_slack_request()))


@app.route("/slack/commands", methods=["POST"], content_types=SLACK_FORM)
def slack_commands():
    """``/safetycatch status|kill|restore FUNCTION``: same checks, answered ephemerally."""
    return _slack_response(_slack().on_commands(*_slack_request()))


# The name is chalicelib.bot.slack_routes.WORKER_NAME, written out so that loading app.py loads no Slack module
# (tests/bot/test_app.py checks that the two agree).
@app.lambda_function(name="slack_worker")
def slack_worker(event, context):
    """Invoked asynchronously by the routes: apply the decision, update the Slack message."""
    return _slack().run_worker(event)
