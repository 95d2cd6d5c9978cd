"""package-size on moto: code + layers (CodeSize from ListFunctions / GetFunction) against max_total_mb."""

from __future__ import annotations

import pytest

from chalicelib.checks.package_size import CHECK, MB, evaluate
from chalicelib.handlers import handle_event
from chalicelib.model import AccountFacts, FunctionRef, FunctionSnapshot, Layer
from cli.cloudtrail import api_call

PARAMS = {"max_total_mb": 50}


def _policies(tmp_path, max_total_mb):
    (tmp_path / "package-size.yaml").write_text(f"mode: notify\nparams:\n  max_total_mb: {max_total_mb}\n")
    (tmp_path / "settings.yaml").write_text("{}\n")
    return tmp_path


def _findings(report):
    return [f for f in report["findings"] if f["policy"] == "package-size"]


@pytest.mark.slow
def test_layers_over_50_mb_fire_on_a_code_update(aws, runtime):
    pandas = aws.layer("pandas", 52 * MB)
    arn = aws.function("ml-scorer", Layers=[pandas])
    event = api_call("UpdateFunctionCode20150331v2", {"functionName": arn, "publish": False, "zipFile": {}},
                     {"functionName": "ml-scorer", "functionArn": arn})
    (finding,) = _findings(handle_event(event, runtime=runtime))
    assert finding["outcome"] == "reported" and finding["fix"] is None
    assert "Deployment package is 52.0 MB" in finding["message"]
    assert "largest pandas:1 52.0 MB" in finding["message"] and "over 50 MB" in finding["message"]
    assert "Start with the layers" in finding["message"]


def test_the_total_counts_every_layer(aws, make_runtime, tmp_path):
    small, big = aws.layer("utils", 400 * 1024), aws.layer("numpy", 900 * 1024)
    arn = aws.function("etl", Layers=[small, big])
    aws.function("lean")
    aws.function("one-layer", Layers=[big])  # 0.9 MB + a tiny zip: under 1 MB
    report = make_runtime(policies=_policies(tmp_path, 1)).engine("123456789012", "us-east-1").sweep()
    (decision,) = [d for d in report.decisions if d.finding.policy == "package-size"]
    assert decision.finding.function_arn == arn
    evidence = decision.finding.evidence
    assert evidence["layers"] == 2 and evidence["largest_layer"] == big
    small_size = aws.client("lambda").get_layer_version(LayerName="utils", VersionNumber=1)["Content"]["CodeSize"]
    assert evidence["total_bytes"] == evidence["code_bytes"] + evidence["largest_layer_bytes"] + small_size
    assert "2 layers, largest numpy:1 0.9 MB" in decision.finding.message


def test_at_the_limit_is_fine_and_over_it_fires():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), code_size=50 * MB)
    assert evaluate(fn, PARAMS, AccountFacts()) == []
    fn.code_size += 1
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert "code 50.0 MB" in finding.message and "Start with the code" in finding.message
    assert "layer" not in finding.message


def test_container_images_are_not_measured():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), package_type="Image", code_size=0,
                          layers=(Layer("arn:aws:lambda:us-east-1:123456789012:layer:x:1", 900 * MB),))
    assert evaluate(fn, PARAMS, AccountFacts()) == []


def test_a_layer_without_a_size_counts_as_zero():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), code_size=10 * MB,
                          layers=(Layer("arn:aws:lambda:us-east-1:111111111111:layer:shared:4", 0),))
    assert evaluate(fn, PARAMS, AccountFacts()) == []


def test_reads_nothing_beyond_the_function_list(aws, runtime, calls):
    for i in range(3):
        aws.function(f"fn-{i}")
    calls.clear()
    runtime.engine("123456789012", "us-east-1").sweep()
    assert CHECK.needs == frozenset()
    assert not any("Layer" in call for call in calls.calls)
