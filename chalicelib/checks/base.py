"""What a check is: the declarations every check module imports (``Check``, ``Param``, ``Params``, ``FACETS``).

Kept apart from the package ``__init__``, which only collects the check modules into ``REGISTRY``, so that
no check module imports the package that imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.model import AccountFacts, Finding, FunctionSnapshot, LogSearch, MetricQuery

Params = dict[str, Any]
Evaluate = Callable[[FunctionSnapshot, Params, AccountFacts], list[Finding]]

# Facets a check may read beyond the function configuration (see inventory.Inventory.load).
FACETS = frozenset({"concurrency", "mappings", "routes", "metrics", "account", "alarms",
                    "network", "role_policies", "triggers", "logs", "recursion"})
FACETS |= frozenset({"urls", "provisioned"})  # function URLs; provisioned-concurrency configs
FACETS |= frozenset({"package"})  # layer sizes the configuration lacks; container-image sizes (ECR)
FACETS |= frozenset({"recommendations"})  # AWS Compute Optimizer memory recommendations
FACETS |= frozenset({"scaling"})  # Application Auto Scaling on provisioned concurrency
FACETS |= frozenset({"chains", "iam_simulation"})  # loop paths of several hops; IAM's own answer on a loop

# API Gateway changes that write a whole API (OpenAPI imports, HTTP API quick create) or move a route: every Lambda
# integration of the API may have changed (chalicelib/intake/events.py watches these; the route-reading checks declare
# them).
API_DEFINITION_CHANGES = ("ImportRestApi", "PutRestApi", "ImportApi", "ReimportApi", "CreateApi", "UpdateRoute")

MAX_TEXT = 256    # characters in a text param (and in each item of a list param)
MAX_ITEMS = 100   # items in a list param


@dataclass(frozen=True)
class Param:
    """One tunable of a check, validated by ``settings`` when policies are loaded.

    Every number has a ``minimum`` and a ``maximum`` that keep the check's fix sane (a test holds every check
    to it); text is 1-``MAX_TEXT`` characters, a list at most ``MAX_ITEMS`` such strings.

    Example:
        >>> Param("buffer_seconds", int, 4, "", minimum=0, maximum=10).out_of_bounds(40)
        'must be <= 10, got 40'
        >>> Param("buffer_seconds", int, 4, "", minimum=0, maximum=10).bounds()
        '0-10'
    """

    name: str
    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None

    def out_of_bounds(self, value: Any) -> str | None:
        """Why ``value`` (already of the right type) is out of bounds, or None."""
        if self.kind is str and not 0 < len(value) <= MAX_TEXT:
            return f"expected 1-{MAX_TEXT} characters, got {len(value)}"
        if self.kind is list:
            if len(value) > MAX_ITEMS:
                return f"expected at most {MAX_ITEMS} items, got {len(value)}"
            if any(not 0 < len(item) <= MAX_TEXT for item in value):
                return f"expected items of 1-{MAX_TEXT} characters"
        if self.kind in (int, float):
            if self.minimum is not None and value < self.minimum:
                return f"must be >= {self.minimum}, got {value}"
            if self.maximum is not None and value > self.maximum:
                return f"must be <= {self.maximum}, got {value}"
        return None

    def bounds(self) -> str:
        """The bounds for people (``explain``)."""
        if self.kind is str:
            return f"1-{MAX_TEXT} chars"
        if self.kind is list:
            return f"<= {MAX_ITEMS} items"
        if self.kind is bool:
            return "true/false"
        return f"{self.minimum:g}-{self.maximum:g}" if self.minimum is not None and self.maximum is not None \
            else f">= {self.minimum:g}" if self.minimum is not None else "-"


@dataclass(frozen=True)
class Rule:
    """A bound across params of one check (e.g. the memory a fix sets is above the memory it flags).

    ``holds(params)`` is checked by ``lint`` and policy loading once each param is valid on its own;
    ``text`` is what ``explain`` shows and what the error says.
    """

    text: str
    params: tuple[str, ...]
    holds: Callable[[Params], bool]


@dataclass(frozen=True)
class Check:
    """A footgun check: ``evaluate(snapshot, params, account) -> [Finding]``, pure, no AWS calls.

    ``in_scope`` is a cheap pre-filter over the base snapshot (config and tags); facets are read only for
    functions in scope, which keeps sweeps to bulk reads. ``metrics(params)`` names the CloudWatch series.
    """

    id: str
    footgun: str
    title: str
    doc: str
    default_mode: str
    default_severity: str
    evaluate: Evaluate
    params: tuple[Param, ...] = ()
    needs: frozenset[str] = frozenset()
    in_scope: Callable[[FunctionSnapshot, Params], bool] = lambda snapshot, params: True
    metrics: Callable[[Params], list[MetricQuery]] = lambda params: []
    fix_actions: tuple[str, ...] = ()
    read_permissions: tuple[str, ...] = field(default=())
    after: frozenset[str] = frozenset()  # policy ids whose findings this check reads (snapshot.flagged_by)
    # Facets read only for the functions this check flagged (per-function reads AWS has no bulk call for,
    # such as the values a fix must store as its prior); the check then runs again with them.
    finding_needs: frozenset[str] = frozenset()
    # The log search the ``logs`` facet runs for this check (patterns, look-back), from its params.
    log_search: Callable[[Params], LogSearch | None] = lambda params: None
    # The CloudTrail changes that can alter this check's verdict: base event names, or
    # ``UpdateFunctionConfiguration:<requestParameter>`` for one field. A Lambda or API Gateway event
    # evaluates only the checks it concerns (see ``concerned``); empty means every change concerns it.
    triggers: frozenset[str] = frozenset()
    # Bounds across params (see ``Rule``), enforced with the params' own bounds.
    rules: tuple[Rule, ...] = ()

    def defaults(self) -> Params:
        return {p.name: p.default for p in self.params}
