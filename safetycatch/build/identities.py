"""The bot's own identities, exactly: the names of its functions and execution roles per stage, and their ARNs.

``chalice package`` (finished by ``safetycatch.build.steps.finish_template``) and ``chalice deploy`` name them alike:
the API handler ``<app>-<stage>``, every other function ``<app>-<stage>-<name>``, and each function's role
``<app>-<stage>-<name>`` (``name``: the Chalice function name, ``api_handler`` for the API). These names go into
the packaged settings (``self_role_patterns``, ``own_functions``), the member role's trust policy and the bot's
IAM policy, so that nothing is recognised by a name pattern anyone could copy.

Example:
    >>> role_arns("123456789012", "prod", ["on_config_change"])
    ['arn:aws:iam::123456789012:role/safetycatch-prod-on_config_change']
    >>> function_name("prod", "api_handler"), function_name("prod", "slack_worker")
    ('safetycatch-prod', 'safetycatch-prod-slack_worker')
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = "safetycatch"
PARTITION = "aws"
API_HANDLER = "api_handler"
ROOT = Path(__file__).resolve().parents[2]


def chalice_resources() -> dict[str, str]:
    """SAM logical id -> Chalice's name of each function of app.py (``on_config_change``, ``api_handler``)."""
    from chalice.utils import to_cfn_resource_name

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import app as chalice_app

    app = chalice_app.app
    names = {to_cfn_resource_name(source.name): source.name for source in app.event_sources}
    names.update({to_cfn_resource_name(fn.name): fn.name for fn in app.pure_lambda_functions})
    if app.routes:
        names["APIHandler"] = API_HANDLER
    return names


def chalice_names() -> list[str]:
    """Every function of the app by its Chalice name, sorted."""
    return sorted(chalice_resources().values())


def function_name(stage: str, name: str) -> str:
    """The deployed name of the Chalice function ``name``."""
    return f"{APP}-{stage}" if name == API_HANDLER else f"{APP}-{stage}-{name}"


def role_name(stage: str, name: str) -> str:
    """The name of the execution role of the Chalice function ``name``."""
    return f"{APP}-{stage}-{name}"


def role_arns(account: str, stage: str, names: list[str] | None = None) -> list[str]:
    """Exact ARNs of the bot's execution roles in ``account`` (every function's, or ``names``')."""
    return [f"arn:{PARTITION}:iam::{account}:role/{role_name(stage, n)}" for n in (names or chalice_names())]


# Functions of deploy/resources.yaml (named safetycatch-<stage>-<name> there): not Chalice's, still the bot's own.
TEMPLATE_FUNCTIONS = ("dead-letter-notifier",)


def function_arns(account: str, region: str, stage: str) -> list[str]:
    """Exact ARNs of the bot's functions in ``account`` / ``region`` (Chalice's and the template's)."""
    names = [function_name(stage, n) for n in chalice_names()] + [f"{APP}-{stage}-{n}" for n in TEMPLATE_FUNCTIONS]
    return [f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}" for name in names]


RESERVATION_PARAMETER = "ReservedConcurrency"  # the stack parameter of every function without its own setting


def reservation_parameter(name: str, config: dict) -> str:
    """The stack parameter that holds the reserved concurrency of the Chalice function ``name``: its own
    (``<Name>ReservedConcurrency``) when .chalice/config.json gives it its own ``reserved_concurrency`` under
    ``lambda_functions``, else the shared ``ReservedConcurrency`` (the config's top-level value).

    Example:
        >>> config = {"reserved_concurrency": 10, "lambda_functions": {"sweep_worker": {"reserved_concurrency": 10}}}
        >>> reservation_parameter("sweep_worker", config), reservation_parameter("on_config_change", config)
        ('SweepWorkerReservedConcurrency', 'ReservedConcurrency')
    """
    if "reserved_concurrency" in config.get("lambda_functions", {}).get(name, {}):
        return "".join(part.capitalize() for part in name.split("_")) + RESERVATION_PARAMETER
    return RESERVATION_PARAMETER
