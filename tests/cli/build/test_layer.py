"""The layer you test is the layer you deploy: one pin (safetycatch/build/layer.py) for the Powertools release the
tests run and the Powertools layer every stage deploys, resolved in the stage's own region."""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys

import boto3
import pytest
from botocore.stub import Stubber

from safetycatch.build import iam, layer
from safetycatch.build import steps as build

ROOT = iam.ROOT


def test_the_pin_is_the_powertools_release_the_tests_run():
    assert importlib.metadata.version("aws-lambda-powertools") == layer.POWERTOOLS_VERSION
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["aws-lambda-powertools"] == layer.POWERTOOLS_VERSION, "requirements-dev.txt pins another release"


def test_every_stage_deploys_the_pinned_release_in_its_own_region():
    config = json.loads(iam.CONFIG.read_text())
    for stage, settings in config["stages"].items():
        assert settings["layers"] == [layer.reference()], f"{stage}: run `python -m safetycatch.build iam`"
    assert layer.reference() == "{{resolve:ssm:/aws/service/powertools/python/x86_64/python3.11/3.37.0}}"
    # the packaged template keeps it as is: CloudFormation resolves it in the stack's region
    done = build.finish_template({"Resources": {"Fn": {"Type": "AWS::Serverless::Function",
                                                       "Properties": {"Layers": [layer.reference()]}}}}, "dev", {})
    assert done["Resources"]["Fn"]["Properties"]["Layers"] == [layer.reference()]


def test_the_layer_is_for_the_python_that_builds_the_package():
    assert layer.PYTHON == f"python{sys.version_info.major}.{sys.version_info.minor}"
    major, minor = sys.version_info[:2]
    assert layer.layer_name() == f"AWSLambdaPowertoolsPythonV3-python{major}{minor}-x86_64"


def test_the_published_rows_follow_the_release_order():
    """The rows kept from the published tables: a later release never has an earlier layer version."""
    releases = sorted(layer.PUBLISHED, key=lambda v: tuple(map(int, v.split("."))))
    versions = [layer.PUBLISHED[r] for r in releases]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert re.fullmatch(r"arn:aws:lambda:ap-southeast-2:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-"
                        r"x86_64:2", layer.published_arn("3.1.0", "ap-southeast-2"))


def _regional(region: str, description: str | None = None) -> tuple[object, object, str]:
    """Real ssm and lambda clients of ``region`` whose GetParameter / GetLayerVersionByArn answer as AWS does
    (moto has no /aws/service/powertools parameters, nor GetLayerVersionByArn): stubbed, those calls only."""
    arn = f"arn:aws:lambda:{region}:017000801446:layer:{layer.layer_name()}:41"
    ssm, lam = boto3.client("ssm", region_name=region), boto3.client("lambda", region_name=region)
    ssm_stub, lam_stub = Stubber(ssm), Stubber(lam)
    ssm_stub.add_response("get_parameter", {"Parameter": {"Name": layer.ssm_parameter(), "Value": arn,
                                                          "Type": "String"}}, {"Name": layer.ssm_parameter()})
    lam_stub.add_response("get_layer_version_by_arn", {
        "LayerVersionArn": arn, "Version": 41,
        "Description": description or f"Powertools for AWS Lambda (Python) V3 [x86_64 - Python 3.11] with extra "
                                      f"dependencies version {layer.POWERTOOLS_VERSION}"}, {"Arn": arn})
    ssm_stub.activate()
    lam_stub.activate()
    return ssm, lam, arn


@pytest.mark.parametrize("region", ["eu-west-1", "ap-southeast-2", "us-east-1"])
def test_the_resolved_layer_is_the_one_of_the_region(region):
    ssm, lam, arn = _regional(region)
    found = layer.check(ssm, lam)
    assert (found.status, found.arn) == ("ok", arn) and f":lambda:{region}:" in found.arn


def test_a_layer_of_another_release_is_missing():
    ssm, lam, arn = _regional("eu-west-1", description="Powertools for AWS Lambda (Python) V3 version 3.5.0")
    found = layer.check(ssm, lam)
    assert found.status == "missing" and f"is not Powertools {layer.POWERTOOLS_VERSION}" in found.detail


def test_a_release_not_published_in_the_region_is_missing():
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": layer.ssm_parameter()})
        stub.add_response("get_parameter", {"Parameter": {"Name": "latest", "Type": "String", "Value":
                                                          "arn:aws:lambda:eu-west-1:017000801446:layer:x:40"}})
        found = layer.resolve(ssm)
    assert found.status == "missing"
    assert found.detail == f"Powertools {layer.POWERTOOLS_VERSION} is not published in this region (latest there: 40)"


def test_moto_cannot_say_and_is_never_taken_for_present(aws):
    found = layer.check(aws.client("ssm"), aws.client("lambda"))
    assert found.status == "cannot-check" and "/aws/service/powertools" in found.detail
