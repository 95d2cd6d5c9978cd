"""Powertools Logger / Tracer / Metrics are wired around every handler, under a service name that is not the
Chalice app name (or every log line would print twice)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from chalice.test import Client

from chalicelib import handlers, observability
from chalicelib.log import logger
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


def test_in_lambda_every_handler_gets_logger_tracer_and_metrics():
    probe = ("import os; os.environ['AWS_LAMBDA_FUNCTION_NAME'] = 'safetycatch-dev-on_config_change'\n"
             "os.environ['LAMBDA_TASK_ROOT'] = os.getcwd()\n"
             "import app; from chalicelib import observability as o\n"
             "print(len(app.app.middleware_handlers), o.tracer().service, o.tracer().disabled)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split() == ["3", "safetycatch-bot", "False"]
