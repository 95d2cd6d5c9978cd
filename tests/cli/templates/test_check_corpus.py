"""``check`` on a corpus of real templates (issue 25, item 4): no crash, no unreadable file, bounded time.

``tests/templates/corpus/`` holds 307 unmodified SAM / CloudFormation templates that cfn-lint's decoder
accepts: 151 of AWS SAM's translator test inputs and 156 of AWS's serverless patterns, each with its repository,
commit and path in ``SOURCES.json`` (``fetch.py`` rebuilds them). Each is read and evaluated in this process
(about 3 s for all); a few known answers pin the behaviours issue 25 fixed on the real files they came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.policy import settings
from safetycatch.check import CheckReport, evaluate, read_each
from safetycatch.main import main

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "templates" / "corpus"
SOURCES = json.loads((CORPUS / "SOURCES.json").read_text())


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    policy_set = settings.load(str(ROOT / "policies"))
    out: dict[str, Any] = {}
    for name in sorted(SOURCES):
        report = CheckReport()
        for functions in read_each([str(CORPUS / name)], report):
            evaluate(functions, policy_set, report)
        out[name] = report
    return out


def test_every_corpus_file_has_its_source_and_every_source_its_file():
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()} - {"SOURCES.json", "fetch.py"}
    assert files == set(SOURCES) and len(files) >= 300
    assert all({"repo", "commit", "path", "license"} <= set(s) for s in SOURCES.values())


def test_no_template_of_the_corpus_crashes_or_is_unreadable(results):
    failed = {name: r.errors for name, r in results.items() if r.errors}
    assert failed == {}
    assert sum(r.functions for r in results.values()) > 400


def _findings(results: dict[str, Any], name: str, policy: str) -> dict[str, dict[str, Any]]:
    return {f["resource"]: f for f in results[name].findings if f["policy"] == policy}


def test_known_answers_on_real_templates(results):
    # SAM's implicit_api_with_timeout: a 5 s integration timeout, a finding without a fix (it crashed check)
    (short,) = _findings(results, "sam/implicit_api_with_timeout.yaml", "apigw-timeout").values()
    assert short["fix"]["value"] is None
    # a streamed REST API (responseTransferMode STREAM in its OpenAPI body) is not held to 29 s
    streaming = "patterns/apigw-rest-api-lambda-python-response-streaming.yaml"
    assert _findings(results, streaming, "apigw-timeout") == {}
    # a 900 s worker behind an asynchronous integration ('Event') is neither cut nor said to leak errors
    webhook = "patterns/lambda-durable-webhook-sam-nodejs.yaml"
    assert "WebhookProcessorFunction" not in _findings(results, webhook, "apigw-timeout")
    assert "WebhookProcessorFunction" not in _findings(results, webhook, "sync-error-status")
    assert "StatusQueryFunction" in _findings(results, webhook, "apigw-timeout")  # its synchronous neighbour


def test_the_cli_renders_the_whole_corpus_in_one_run(capsys):
    files = [str(CORPUS / name) for name in sorted(SOURCES)]
    code = main(["check", *files, "--policies", str(ROOT / "policies"), "--format", "sarif"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    assert len(json.loads(out)["runs"][0]["results"]) > 100
