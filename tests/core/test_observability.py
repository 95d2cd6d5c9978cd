"""Powertools Logger / Tracer / Metrics are wired around every handler, under a service name that is not the
Chalice app name (or every log line would print twice)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from chalice.test import Client

from chalicelib.bot import handlers
from chalicelib.core import observability
from chalicelib.core.log import logger
from tests.conftest import ROOT


def _emf(stdout: str) -> list[dict]:
    return [doc for line in stdout.splitlines() if line.startswith("{") and "_aws" in (doc := json.loads(line))]


def test_handler_invocation_logs_with_context_and_flushes_metrics(aws, runtime, event, monkeypatch, capsys):
    import app

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "safetycatch-dev-on_config_change")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    handlers.reset_runtime(runtime)
    stream = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", stream)
    logger.setLevel("INFO")
    try:
        with Client(app.app) as client:
            client.lambda_.invoke(
                "on_config_change", event("lambda-UpdateFunctionConfiguration20150331v2-AccessDenied")
            )
    finally:
        logger.setLevel("WARNING")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    skipped = [line for line in lines if line["message"] == "skipped"]
    assert skipped and skipped[0]["service"] == "safetycatch-bot" != app.app.app_name
    assert skipped[0]["function_name"] == "on_config_change", "inject_lambda_context ran as middleware"
    (metrics,) = _emf(capsys.readouterr().out)
    (directive,) = metrics["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "safetycatch" and metrics["service"] == "safetycatch-bot"
    assert metrics["EventsSkipped"] in (1.0, [1.0])


def test_outside_lambda_nothing_is_recorded(capsys):
    observability.record_report({"skipped": None, "findings": [{"outcome": "fixed"}]})
    assert observability.metrics.metric_set == {}
    assert capsys.readouterr().out == ""


PROBE = """
import json, os
os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "safetycatch-dev-on_config_change"
os.environ["LAMBDA_TASK_ROOT"] = os.getcwd()
os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
import app
from aws_xray_sdk.core import xray_recorder
from chalice.test import Client

class Emitter:  # what the X-Ray daemon would receive, kept here instead of sent over UDP
    ip, port, sent = "127.0.0.1", 2000, []
    def send_entity(self, entity):
        self.sent.append(entity.name)
    def set_daemon_address(self, address):
        pass

xray_recorder.emitter = emitter = Emitter()
with open("tests/events/lambda-UpdateFunctionConfiguration20150331v2-AccessDenied.json") as f:
    event = json.load(f)
with Client(app.app) as client:
    client.lambda_.invoke("on_config_change", event)
print(json.dumps({"xray": emitter.sent}))
"""


def test_in_lambda_a_handler_logs_with_its_context_traces_and_flushes_metrics():
    """Inside Lambda (a fresh interpreter: the Tracer is made only there), one invocation of a handler writes
    log lines with the Lambda context, an EMF metric set, and X-Ray subsegments for the handler and its AWS
    calls (the emitter is swapped for a list: no X-Ray daemon here)."""
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-1500:]
    lines = (result.stdout + result.stderr).splitlines()  # the log on stderr, EMF and the probe on stdout
    docs = [json.loads(line) for line in lines if line.startswith("{")]
    logs = [d for d in docs if "message" in d]
    assert logs and all(d["service"] == "safetycatch-bot" for d in logs)
    assert all(d.get("function_name") == "on_config_change" for d in logs), "each line has the Lambda context"
    assert any(d["message"] == "skipped" and d.get("xray_trace_id") for d in logs)
    (metrics,) = [d for d in docs if "_aws" in d]
    assert metrics["service"] == "safetycatch-bot" and metrics["EventsSkipped"] in (1.0, [1.0])
    (traced,) = [d["xray"] for d in docs if "xray" in d]
    assert any(name.startswith("## ") for name in traced), traced


def test_captured_log_works_after_the_logger_was_made_inside_a_closed_capture():
    """Run order matters to this fixture: when chalicelib.core.log is first imported inside a ``capsys`` test, the
    Powertools handler keeps that test's stream, closed afterwards; ``setStream`` flushes it and raised
    ``ValueError: I/O operation on closed file`` in the next test that captured the log (seen in make mutate's
    serial run). The fixture puts such a handler back on stdout first."""
    import io

    from chalicelib.core.log import logger
    from tests.conftest import capture_bot_log

    handler = logger.registered_handler
    saved, closed = handler.stream, io.StringIO()
    closed.close()
    handler.stream = closed
    try:
        with capture_bot_log() as buffer:
            logger.info("heard after a closed capture")
        assert "heard after a closed capture" in buffer.getvalue()
        assert not getattr(handler.stream, "closed", False)
    finally:
        handler.stream = saved
