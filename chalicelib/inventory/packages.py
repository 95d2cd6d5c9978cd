"""What a deployment package weighs beyond the function's own CodeSize: layer sizes the configuration does not
carry, and container images (their size in Amazon ECR).

* Layers: ListFunctions / GetFunction give each layer's own ``CodeSize``; where one is missing (0), one
  GetLayerVersion per layer version per run reads it (shared layers are read once).
* Images: ListFunctions gives no image URI, so an image function costs one GetFunction in a sweep (the event
  path already has it), then one ECR DescribeImages for the image Lambda resolved.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches.
What moto cannot show: ECR's ``imageSizeInBytes`` is the sum of the image's compressed layers (botocore's
documentation of DescribeImages); moto reports the manifest's config size instead, so tests set that.
"""

from __future__ import annotations

import dataclasses
import re

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_not_found, is_transient
from chalicelib.core.model import FunctionSnapshot
from chalicelib.inventory.common import ReadContext, Reader

# <account>.dkr.ecr.<region>.amazonaws.com/<repository>(:<tag>|@<digest>)
_IMAGE_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                        r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[\w.-]+)|@(?P<digest>sha256:[0-9a-f]{64}))?$")
_LAYER_VERSION = re.compile(r"^(?P<layer>arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[\w-]+):(?P<version>\d+)$")


def image_reference(uri: str) -> dict[str, str] | None:
    """The registry, repository and tag or digest of an ECR image URI; None when it is not one.

    Example:
        >>> image_reference("123456789012.dkr.ecr.us-east-1.amazonaws.com/ml/scorer:v3")["repo"]
        'ml/scorer'
    """
    match = _IMAGE_URI.match(uri or "")
    return {k: v or "" for k, v in match.groupdict().items()} if match else None


class PackageReader(Reader):
    """Layer sizes the configuration lacks, and container-image sizes (package-size)."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._layer_sizes: dict[str, tuple[int | None, str]] = {}  # layer version ARN -> (size, why not)

    def load_package(self, snapshots: list[FunctionSnapshot]) -> None:
        """The ``package`` facet: layer sizes the configuration lacks; container-image sizes."""
        images: list[FunctionSnapshot] = []
        for snapshot in snapshots:
            if any(layer.code_size <= 0 for layer in snapshot.layers):
                self._size_layers(snapshot)
            if snapshot.package_type == "Image":
                images.append(snapshot)
            snapshot.loaded.add("package")
        if images:
            self._size_images(images)

    def _size_layers(self, snapshot: FunctionSnapshot) -> None:
        cache = self._layer_sizes
        unknown = []
        sized = []
        for layer in snapshot.layers:
            if layer.code_size <= 0:
                if layer.arn not in cache:
                    cache[layer.arn] = self._read_layer_size(layer.arn)
                size, why = cache[layer.arn]
                if size is None:
                    unknown.append(f"{layer.arn.split(':layer:', 1)[-1]} ({why})")
                layer = dataclasses.replace(layer, code_size=size or 0)
            sized.append(layer)
        snapshot.layers = tuple(sized)
        if unknown:
            snapshot.unavailable["layers"] = "size unknown for layer(s) " + ", ".join(unknown)

    def _read_layer_size(self, arn: str) -> tuple[int | None, str]:
        match = _LAYER_VERSION.match(arn)
        if not match:
            return None, "not a layer version ARN"
        try:
            content = self.clients("lambda").get_layer_version(
                LayerName=match["layer"], VersionNumber=int(match["version"])).get("Content") or {}
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            return None, "deleted" if is_not_found(exc) else f"GetLayerVersion: {error_code(exc) or 'error'}"
        size = content.get("CodeSize")
        return (int(size), "") if size else (None, "GetLayerVersion gave no size")

    def _size_images(self, snapshots: list[FunctionSnapshot]) -> None:
        for snapshot in snapshots:
            if not snapshot.image_uri:
                code = self.clients("lambda").get_function(FunctionName=snapshot.arn).get("Code") or {}
                snapshot.image_uri = str(code.get("ImageUri", ""))
                snapshot.resolved_image_uri = str(code.get("ResolvedImageUri", ""))
            reference = image_reference(snapshot.image_uri)
            if reference is None:
                snapshot.unavailable["image"] = f"not an ECR image URI: {snapshot.image_uri[:120]!r}"
                continue
            resolved = (image_reference(snapshot.resolved_image_uri) or {}).get("digest", "")
            self._describe_image(snapshot, reference, resolved)

    def _describe_image(self, snapshot: FunctionSnapshot, ref: dict[str, str], resolved: str) -> None:
        """ECR DescribeImages of the image Lambda runs: the digest it resolved the URI to, else the digest or
        tag the URI names (DescribeImages answers ImageNotFoundException when an id is unknown)."""
        tag = ref["tag"] or ("" if ref["digest"] else "latest")
        ids = [{"imageDigest": d} for d in dict.fromkeys((resolved, ref["digest"])) if d] + \
            ([{"imageTag": tag}] if tag else [])
        why = "image not found in ECR"
        for image_id in ids:
            try:
                details = self.clients("ecr").describe_images(
                    registryId=ref["account"], repositoryName=ref["repo"], imageIds=[image_id]).get("imageDetails")
            except ClientError as exc:
                if self.ctx.transient_raises and is_transient(exc):
                    raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
                if error_code(exc) == "ImageNotFoundException":
                    continue
                why = f"ECR DescribeImages: {error_code(exc) or 'error'}"
                break
            size = (details or [{}])[0].get("imageSizeInBytes")
            if size is not None:
                snapshot.image_bytes = int(size)
                return
        snapshot.unavailable["image"] = f"{why} ({ref['repo']})"
