"""package-size (footgun 5): the deployment package (code plus layers, or the container image) is oversized.

Every new execution environment downloads and unpacks the function's code and all its layers before the
first request: pandas, numpy or a bundled boto3 add seconds to each cold start.

What it measures, for a zip function: the zipped size of the code plus each layer's own zipped size (the
CodeSize AWS reports for the code and for every layer; a layer whose size the function configuration lacks is
read with GetLayerVersion), against ``max_total_mb`` - by default 50 MB, the limit for a zip uploaded
directly (larger ones must go through S3). The other limit, 250 MB for code and layers unzipped, cannot be
checked: the Lambda API reports only zipped sizes, so the distance to it is unknown and the message says so.

A container-image function has neither limit: its image may be up to 10 GB (uncompressed). Its size is read
from Amazon ECR (compressed, as ECR stores it) and compared with ``max_image_mb``; Lambda caches image chunks,
so a large image costs less than a large zip, but the first cold starts still pull it.

Sizes and params are in MB of 1,048,576 bytes (``aws lambda get-function`` / 1048576). The fix is in the
build: drop what the runtime already has (boto3), tests and docs, ``pip install --no-deps``, move shared
libraries to a layer used by several functions, or ship a container image.
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import MB, AccountFacts, Finding, FunctionSnapshot

DIRECT_UPLOAD_LIMIT_MB = 50  # a zip uploaded directly (CreateFunction / UpdateFunctionCode ZipFile)
UNZIPPED_LIMIT_MB = 250  # code + layers, unzipped: not readable from the Lambda API
IMAGE_LIMIT_MB = 10 * 1024  # a container image, uncompressed


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size / 1024:.1f} KB"


def _image_finding(snapshot: FunctionSnapshot, params: Params) -> list[Finding]:
    size = snapshot.image_bytes
    if size is None or size <= params["max_image_mb"] * MB:
        return []
    image = snapshot.image_uri.split("/", 1)[-1] or "its image"
    message = (
        f"Container image {image} is {_mb(size)} in ECR (compressed), over {params['max_image_mb']} MB: the first "
        f"cold starts on each host pull it. Image functions have no zip limits; the image may reach "
        f"{IMAGE_LIMIT_MB // 1024} GB uncompressed, a size ECR does not report, so how close it is cannot be read. "
        f"Use a slim base image, multi-stage builds, and keep models and data out of the image."
    )
    evidence = {"image_bytes": size, "image_mb": round(size / MB, 1), "limit_mb": IMAGE_LIMIT_MB,
                "measured": "compressed image size in ECR"}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag zipped CodeSize + every layer's own size over ``max_total_mb``; an image over ``max_image_mb``.

    Example:
        >>> from chalicelib.core.model import FunctionRef, Layer
        >>> fn = FunctionSnapshot(FunctionRef("ml", "123456789012", "us-east-1"), code_size=12 * MB,
        ...                       layers=(Layer("arn:aws:lambda:us-east-1:123456789012:layer:pandas:3", 45 * MB),))
        >>> evaluate(fn, {"max_total_mb": 50, "max_image_mb": 1024}, AccountFacts())[0].evidence["total_mb"]
        57.0
    """
    if snapshot.package_type == "Image":
        return _image_finding(snapshot, params)
    if snapshot.package_type != "Zip":
        return []
    total = snapshot.package_bytes
    if total <= params["max_total_mb"] * MB:
        return []
    parts = [f"code {_mb(snapshot.code_size)}"]
    largest = max(snapshot.layers, key=lambda layer: layer.code_size, default=None)
    if largest is not None:
        name = largest.arn.split(":layer:", 1)[-1]
        parts.append(f"{len(snapshot.layers)} layer{'s' if len(snapshot.layers) > 1 else ''}, largest {name} "
                     f"{_mb(largest.code_size)}")
    unknown = f" ({snapshot.unavailable['layers']}: not counted)" if "layers" in snapshot.unavailable else ""
    heavy = "the layers" if largest is not None and largest.code_size > snapshot.code_size else "the code"
    limit = " (the limit for a zip uploaded directly)" if params["max_total_mb"] == DIRECT_UPLOAD_LIMIT_MB else ""
    message = (
        f"Deployment package is {_mb(total)} zipped ({'; '.join(parts)}){unknown}, over {params['max_total_mb']} "
        f"MB{limit}: every cold start downloads and unpacks all of it. Unzipped, code and layers must stay within "
        f"{UNZIPPED_LIMIT_MB} MB, a size the Lambda API does not report, so how close this is cannot be read "
        f"(list the zip with `unzip -l`). Start with {heavy}: drop what the runtime already has (boto3), tests "
        f"and docs, install with --no-deps, or move to a container image."
    )
    evidence = {"total_bytes": total, "code_bytes": snapshot.code_size, "layers": len(snapshot.layers),
                "largest_layer": largest.arn if largest else None,
                "largest_layer_bytes": largest.code_size if largest else None,
                "total_mb": round(total / MB, 1), "measured": "zipped code + layers",
                "unzipped_limit_mb": UNZIPPED_LIMIT_MB, "unzipped_mb": None}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


CHECK = Check(
    id="package-size",
    footgun="5",
    title="Oversized deployment package (code + layers, or container image)",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param("max_total_mb", int, DIRECT_UPLOAD_LIMIT_MB, "Largest zipped code + layers (MB) before it is flagged; "
              "50 is the direct-upload limit.", minimum=1, maximum=UNZIPPED_LIMIT_MB),
        Param("max_image_mb", int, 1024, "Largest container image (MB, compressed, as ECR reports it) before it is "
              "flagged; images may reach 10 GB uncompressed.", minimum=1, maximum=IMAGE_LIMIT_MB),
    ),
    needs=frozenset({"package"}),
    read_permissions=("lambda:GetLayerVersion", "ecr:DescribeImages"),
    triggers=frozenset(("UpdateFunctionConfiguration:layers", "UpdateFunctionCode")),
)
