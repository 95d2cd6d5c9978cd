"""The Powertools layer the bot deploys, pinned in one place to the Powertools version the tests run.

The Lambda package leaves Powertools out: the functions get it from the AWS-published layer
``AWSLambdaPowertoolsPythonV3-<python>-<arch>``. Its version numbers are per layer, not semantic versions, and
the Powertools team publishes the mapping in two forms:

* the documented layer ARNs (docs/includes/_layer_homepage_x86.md and docs/index.md in
  github.com/aws-powertools/powertools-lambda-python), updated after each release: ``PUBLISHED`` below keeps the
  rows that can be read there (3.1.0 -> 2 and 3.2.0 -> 3 from the commits "docs(layer): update layer version
  number" in the repository's history up to its October 2024 snapshot; 3.23.0 -> 27 from issue #7689 and pull
  request #7757). The snapshot has no row for 3.37.0;
* public SSM parameters ``/aws/service/powertools/python/<arch>/<python>/<version>`` in every region the layer
  is published in, whose value is that region's layer ARN for that exact release (written by the release
  workflow .github/workflows/update_ssm.yml, pull request #5754).

So the pin is the semantic version, ``POWERTOOLS_VERSION``, which requirements-dev.txt pins too (a test checks
both, and the installed version). The deployed layer is the SSM mapping of that version *in the stack's own
region*: CloudFormation resolves ``reference()`` at deploy time (``make package``: .chalice/config.json holds
it), ``chalice-deploy`` resolves it in the deploy region first (``resolve``), and ``safetycatch doctor`` checks
that the layer exists in the region (``check``).

Example:
    >>> ssm_parameter()
    '/aws/service/powertools/python/x86_64/python3.11/3.37.0'
    >>> published_arn("3.23.0", "eu-west-1")
    'arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:27'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

POWERTOOLS_VERSION = "3.37.0"  # the one pin: requirements-dev.txt and the installed package must agree (tested)
PYTHON = "python3.11"  # the Lambda runtime chalice packages for (the Python that runs the build)
ARCHITECTURE = "x86_64"
PUBLISHER_ACCOUNT = "017000801446"  # the Powertools team's layer account in the aws partition
# Release -> layer version, as the published tables show it (see the module docstring for the sources).
PUBLISHED = {"3.1.0": 2, "3.2.0": 3, "3.23.0": 27}


def layer_name(python: str = PYTHON, architecture: str = ARCHITECTURE) -> str:
    """``AWSLambdaPowertoolsPythonV3-python311-x86_64``."""
    return f"AWSLambdaPowertoolsPythonV3-{python.replace('.', '')}-{architecture}"


def ssm_parameter(version: str = POWERTOOLS_VERSION, python: str = PYTHON, architecture: str = ARCHITECTURE) -> str:
    """The public SSM parameter whose value is the region's layer ARN for ``version``."""
    return f"/aws/service/powertools/python/{architecture}/{python}/{version}"


def reference() -> str:
    """The layer as a CloudFormation dynamic reference: resolved in the stack's own region at deploy time."""
    return "{{resolve:ssm:" + ssm_parameter() + "}}"


def published_arn(version: str, region: str, partition: str = "aws") -> str:
    """The layer ARN of ``version`` in ``region`` from ``PUBLISHED`` (KeyError for a release it has no row for)."""
    return f"arn:{partition}:lambda:{region}:{PUBLISHER_ACCOUNT}:layer:{layer_name()}:{PUBLISHED[version]}"


@dataclass(frozen=True)
class LayerStatus:
    """What the region says about the pinned layer: ``ok`` / ``missing`` / ``cannot-check``, the ARN, why."""

    status: str
    arn: str
    detail: str


def _code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else type(exc).__name__


def resolve(ssm: Any) -> LayerStatus:
    """The pinned layer's ARN in ``ssm``'s region, from the published SSM mapping."""
    try:
        return LayerStatus("ok", str(ssm.get_parameter(Name=ssm_parameter())["Parameter"]["Value"]), "")
    except (ClientError, BotoCoreError) as exc:
        if _code(exc) != "ParameterNotFound":
            return LayerStatus("cannot-check", "", f"reading {ssm_parameter()} failed ({_code(exc)})")
    try:
        latest = ssm.get_parameter(Name=ssm_parameter("latest"))["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        return LayerStatus("cannot-check", "", "the published Powertools layer mapping (/aws/service/powertools) "
                                               f"is not readable here ({_code(exc)})")
    return LayerStatus("missing", "", f"Powertools {POWERTOOLS_VERSION} is not published in this region "
                                      f"(latest there: {str(latest).rsplit(':', 1)[-1]})")


def check(ssm: Any, lambda_client: Any) -> LayerStatus:
    """Whether the pinned Powertools layer exists in the clients' region and holds ``POWERTOOLS_VERSION``."""
    found = resolve(ssm)
    if found.status != "ok":
        return found
    try:
        layer = lambda_client.get_layer_version_by_arn(Arn=found.arn)
    except (ClientError, BotoCoreError) as exc:
        code = _code(exc)
        if code in ("ResourceNotFoundException", "AccessDeniedException"):
            return LayerStatus("missing", found.arn, f"{found.arn} is not readable ({code})")
        return LayerStatus("cannot-check", found.arn, f"GetLayerVersionByArn failed ({code})")
    description = str(layer.get("Description", ""))
    if POWERTOOLS_VERSION not in description:
        return LayerStatus("missing", found.arn, f"{found.arn} is not Powertools {POWERTOOLS_VERSION} "
                                                 f"({description[:80]!r})")
    return LayerStatus("ok", found.arn, f"{found.arn} (Powertools {POWERTOOLS_VERSION})")


def stage_layers(config: dict[str, Any], layers: list[str] | None = None) -> dict[str, Any]:
    """``config`` (.chalice/config.json) with every stage's ``layers`` set to ``layers`` (default: the pinned
    layer as a dynamic reference)."""
    for stage in config.get("stages", {}).values():
        stage["layers"] = list(layers or [reference()])
    return config


def write_config(path: Path, layers: list[str] | None = None) -> Path:
    """Pin every stage of the Chalice config at ``path`` to the layer (kept in the file's own format)."""
    path.write_text(json.dumps(stage_layers(json.loads(path.read_text()), layers), indent=2) + "\n")
    return path
