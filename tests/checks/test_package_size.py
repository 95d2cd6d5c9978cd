"""package-size on moto: zipped code + layers (CodeSize from ListFunctions / GetFunction, GetLayerVersion where the
configuration lacks a layer's size) against max_total_mb; container images by their ECR size against max_image_mb."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.checks.package_size import CHECK, MB, evaluate
from chalicelib.core.model import AccountFacts, FunctionRef, FunctionSnapshot, Layer
from safetycatch.local.cloudtrail import api_call

PARAMS = {"max_total_mb": 50, "max_image_mb": 1024}


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
    assert "Deployment package is 52.0 MB zipped" in finding["message"]
    assert "largest pandas:1 52.0 MB" in finding["message"]
    # what it measures, against which limit, and what it cannot tell
    assert "over 50 MB (the limit for a zip uploaded directly)" in finding["message"]
    assert "within 250 MB, a size the Lambda API does not report, so how close this is cannot be read" \
        in finding["message"]
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
    assert "largest" not in finding.message
    assert finding.evidence["measured"] == "zipped code + layers" and finding.evidence["unzipped_mb"] is None


def test_a_container_image_is_never_measured_against_the_zip_limits():
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), package_type="Image", code_size=0,
                          layers=(Layer("arn:aws:lambda:us-east-1:123456789012:layer:x:1", 900 * MB),),
                          image_bytes=900 * MB)
    assert evaluate(fn, PARAMS, AccountFacts()) == []  # 900 MB of image is under max_image_mb, zip limits moot


def _image_function(aws, name, size_bytes):
    """An ECR image and an image function on it. moto reports ``imageSizeInBytes`` as the manifest's config
    size (ECR reports the sum of the compressed layers), so the size is set there."""
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=name)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": size_bytes,
                           "digest": "sha256:" + "c" * 64},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size_bytes,
                            "digest": "sha256:" + "d" * 64}]}
    ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag="v1")
    return aws.client("lambda").create_function(
        FunctionName=name, Role=aws.role, PackageType="Image",
        Code={"ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1"})["FunctionArn"]


def test_a_container_image_over_max_image_mb_is_reported_as_an_image(aws, runtime, calls):
    big = _image_function(aws, "scorer", 1536 * MB)
    _image_function(aws, "slim", 300 * MB)
    aws.function("zip-fn")
    calls.clear()
    report = runtime.engine("123456789012", "us-east-1").sweep()
    (decision,) = [d for d in report.decisions if d.finding.policy == "package-size"]
    finding = decision.finding
    assert finding.function_arn == big
    assert finding.message.startswith("Container image scorer:v1 is 1536.0 MB in ECR (compressed), over 1024 MB")
    assert "no zip limits; the image may reach 10 GB uncompressed, a size ECR does not report" in finding.message
    assert finding.evidence["limit_mb"] == 10240
    # one GetFunction per image function (ListFunctions has no image URI), one DescribeImages each; zip: nothing
    assert calls.calls.count("lambda.GetFunction") == 2 and calls.calls.count("ecr.DescribeImages") <= 4


def test_an_image_ecr_cannot_show_is_not_guessed(aws, runtime):
    aws.client("lambda").create_function(FunctionName="gone", Role=aws.role, PackageType="Image",
                                         Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/none:v9"})
    inventory = runtime.engine("123456789012", "us-east-1").inventory
    (snapshot,) = inventory.functions([FunctionRef("gone", "123456789012", "us-east-1")])
    inventory.load({"package": [snapshot]}, {})
    assert snapshot.image_bytes is None and "RepositoryNotFoundException" in snapshot.unavailable["image"]
    assert evaluate(snapshot, PARAMS, AccountFacts()) == []


def test_a_layer_without_a_size_in_the_configuration_is_read_with_get_layer_version(aws, runtime, calls):
    shared = aws.layer("shared", 2 * MB)
    own = FunctionRef("etl", "123456789012", "us-east-1")
    fn = FunctionSnapshot(own, code_size=49 * MB, layers=(Layer(shared, 0),))
    other = FunctionSnapshot(FunctionRef("etl-2", "123456789012", "us-east-1"), code_size=MB,
                             layers=(Layer(shared, 0),))
    calls.clear()
    runtime.engine("123456789012", "us-east-1").inventory.load({"package": [fn, other]}, {})
    assert calls.calls == ["lambda.GetLayerVersion"]  # once per layer version per run
    assert fn.layers[0].code_size > 2 * MB - 4096
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert "largest shared:1 2.0 MB" in finding.message


def test_a_layer_whose_size_cannot_be_read_is_named_not_guessed(aws, runtime):
    foreign = "arn:aws:lambda:us-east-1:111111111111:layer:shared:4"
    fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), code_size=51 * MB,
                          layers=(Layer(foreign, 0),))
    runtime.engine("123456789012", "us-east-1").inventory.load({"package": [fn]}, {})
    assert fn.layers[0].code_size == 0
    (finding,) = evaluate(fn, PARAMS, AccountFacts())
    assert "(size unknown for layer(s) shared:4" in finding.message and "not counted)" in finding.message


def test_reads_nothing_beyond_the_function_list_for_zip_functions(aws, runtime, calls):
    layer = aws.layer("utils", 4096)
    for i in range(3):
        aws.function(f"fn-{i}", Layers=[layer])
    calls.clear()
    runtime.engine("123456789012", "us-east-1").sweep()
    assert CHECK.needs == frozenset({"package"})
    assert not any("Layer" in call or "ecr." in call for call in calls.calls)
