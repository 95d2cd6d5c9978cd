"""package-size (footgun 5): the deployment package (code plus layers) is oversized.

Every new execution environment downloads and unpacks the function's code and all its layers before the
first request: pandas, numpy or a bundled boto3 add seconds to each cold start. Sizes are the zipped
CodeSize AWS reports for the code and each layer (ListFunctions gives both, so a sweep costs nothing extra).
Strip what the runtime already has (boto3), exclude tests and docs, ``pip install --no-deps``, move shared
libraries to a layer used by several functions, or ship a container image. Container-image functions are not
measured (AWS does not report their size here and caches their layers).
"""

from __future__ import annotations

from chalicelib.checks.base import Check, Param, Params
from chalicelib.model import AccountFacts, Finding, FunctionSnapshot

MB = 1024 * 1024


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size / 1024:.1f} KB"


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag CodeSize + the layers' CodeSize over ``max_total_mb`` (MiB, as ``aws lambda get-function`` / 1048576).

    Example:
        >>> from chalicelib.model import FunctionRef, Layer
        >>> fn = FunctionSnapshot(FunctionRef("ml", "123456789012", "us-east-1"), code_size=12 * MB,
        ...                       layers=(Layer("arn:aws:lambda:us-east-1:123456789012:layer:pandas:3", 45 * MB),))
        >>> evaluate(fn, {"max_total_mb": 50}, AccountFacts())[0].evidence["total_bytes"] // MB
        57
    """
    if snapshot.package_type != "Zip":
        return []
    total = snapshot.code_size + sum(layer.code_size for layer in snapshot.layers)
    if total <= params["max_total_mb"] * MB:
        return []
    parts = [f"code {_mb(snapshot.code_size)}"]
    largest = max(snapshot.layers, key=lambda layer: layer.code_size, default=None)
    if largest is not None:
        name = largest.arn.split(":layer:", 1)[-1]
        parts.append(f"{len(snapshot.layers)} layer{'s' if len(snapshot.layers) > 1 else ''}, largest {name} "
                     f"{_mb(largest.code_size)}")
    heavy = "the layers" if largest is not None and largest.code_size > snapshot.code_size else "the code"
    message = (
        f"Deployment package is {_mb(total)} ({'; '.join(parts)}), over {params['max_total_mb']} MB: every cold "
        f"start downloads and unpacks all of it. Start with {heavy}: drop what the runtime already has (boto3), "
        f"tests and docs, install with --no-deps, or move to a container image."
    )
    evidence = {"total_bytes": total, "code_bytes": snapshot.code_size, "layers": len(snapshot.layers),
                "largest_layer": largest.arn if largest else None,
                "largest_layer_bytes": largest.code_size if largest else None}
    return [Finding(CHECK.id, snapshot.arn, "", message, None, evidence)]


CHECK = Check(
    id="package-size",
    footgun="5",
    title="Oversized deployment package (code + layers)",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="medium",
    evaluate=evaluate,
    params=(Param("max_total_mb", int, 50, "Largest code + layers size (zipped, MB) before it is flagged.",
                  minimum=1, maximum=250),),
    triggers=frozenset(("UpdateFunctionConfiguration:layers", "UpdateFunctionCode")),
)
