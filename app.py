"""safetycatch: the map of the bot. Thin handlers only; the work lives in chalicelib/.

* ``on_config_change``: CloudTrail config changes of Lambda functions and API Gateway integrations
  (EventBridge rule) → re-read the function, evaluate the policies, fix / ask / notify.
"""

from chalice import Chalice

from chalicelib import handlers, observability
from chalicelib.events import APIGATEWAY_EVENTS, CLOUDTRAIL, LAMBDA_EVENTS

app = Chalice(app_name="safetycatch")
observability.install(app)  # Powertools Logger context, Tracer and Metrics around every handler

# Lambda event names carry API-version suffixes (UpdateFunctionConfiguration20150331v2): match prefixes.
CONFIG_CHANGES = {
    "source": ["aws.lambda", "aws.apigateway"],
    "detail-type": [CLOUDTRAIL],
    "detail": {
        "eventName": [{"prefix": name} for name in LAMBDA_EVENTS + APIGATEWAY_EVENTS],
        "errorCode": [{"exists": False}],
    },
}


@app.on_cw_event(CONFIG_CHANGES, name="on_config_change")
def on_config_change(event):
    """A function or its API integration changed: enforce the policies on it."""
    return handlers.on_cloudtrail_change(event.to_dict(), event.context)
