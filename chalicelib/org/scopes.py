"""A sweep over many accounts and regions at once, merged into one report.

Each scope (account, region) is swept by its own engine: the bot's account with the bot's credentials, a
member account through its remediation role. Scopes run in parallel threads; AWS throttles per account and
region, so one scope's calls stay sequential (botocore's retries absorb the rest) and parallelism comes
only from independent scopes, capped by ``workers``.

The merged report keeps the single-region JSON contract (``functions_scanned``, ``findings`` and ``errors``
cover every scope; ``account`` and ``region`` name the scope when there is one, else they are null), adds a
``scan_id``, ``account`` and ``region`` to each finding and a ``scopes`` list with each scope's figures.

Example:
    scopes = plan_scopes(runtime, accounts=["111111111111"], regions=["us-east-1", "eu-west-1"])
    report = sweep_scopes(runtime, scopes, act=False)
    [s["region"] for s in report["scopes"]]
    # -> ['us-east-1', 'eu-west-1']
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import describe_error, plain
from chalicelib.org.accounts import ACCOUNT_ID, organization_accounts, uncovered_management_account

if TYPE_CHECKING:  # types only: the engine and the state sit below org
    from chalicelib.decide.engine import Engine
    from chalicelib.intake.dedupe import Deduplicator
    from chalicelib.policy.settings import PolicySet
    from chalicelib.store.state import StateStore

DEFAULT_WORKERS = 8
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
Progress = Callable[[int, int | None], None]



class SweepRuntime(Protocol):
    """What the organisation fan-out is handed, and all it uses. ``chalicelib.bot.runtime.Runtime`` is one: the
    wiring sits above org, so org names it by shape and never imports it (tests/project/test_structure.py).

    Usage (the handlers and ``safetycatch scan``):
        report = sweep_scopes(Runtime.from_env(), plan_scopes(Runtime.from_env(), all_accounts=True))
    """

    @property
    def session(self) -> Any: ...
    @property
    def slack(self) -> Any: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def dedupe(self) -> Deduplicator: ...
    @property
    def policy_set(self) -> PolicySet: ...
    @property
    def home_region(self) -> str: ...
    def engine(self, account: str, region: str) -> Engine: ...
    def clients(self, region: str | None = None, account: str | None = None) -> Any: ...
    def bot_account(self) -> str: ...


@dataclass(frozen=True)
class Scope:
    """One account and region to sweep."""

    account: str
    region: str


def parse_accounts(text: str) -> list[str]:
    """``"111111111111,222222222222"`` → ids; raises ValueError on anything that is not a 12-digit id.

    Example:
        >>> parse_accounts("111111111111, 222222222222")
        ['111111111111', '222222222222']
    """
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not ACCOUNT_ID.match(i)]
    if bad or not ids:
        raise ValueError(f"--accounts: expected 12-digit account ids separated by commas, got {text[:60]!r}")
    return list(dict.fromkeys(ids))


def parse_regions(text: str) -> list[str]:
    """``"us-east-1,eu-west-1"`` → region names; raises ValueError on a malformed one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    bad = [n for n in names if not REGION.match(n)]
    if bad or not names:
        raise ValueError(f"--regions: expected region names separated by commas, got {text[:60]!r}")
    return list(dict.fromkeys(names))


def plan_scopes(runtime: SweepRuntime, accounts: Iterable[str] | None = None, all_accounts: bool = False,
                regions: Iterable[str] | None = None) -> list[Scope]:
    """Every (account, region) pair to sweep: the listed accounts, or the organization's active accounts
    (Organizations ListAccounts), or the bot's own; in the listed regions, or the home region."""
    if all_accounts:  # the management account only when it is the bot's own or declared covered
        skipped = uncovered_management_account(runtime.session, runtime.bot_account())
        ids = [a for a in organization_accounts(runtime.session) if a != skipped]
    else:
        ids = list(accounts or []) or [runtime.bot_account()]
    names = list(regions or []) or [runtime.home_region]
    return [Scope(account, region) for account in ids for region in names]


def sweep_scopes(runtime: SweepRuntime, scopes: list[Scope], act: bool = False, workers: int = DEFAULT_WORKERS,
                 progress: Progress | None = None, select: Callable[[Any], bool] | None = None) -> dict[str, Any]:
    """Sweep every scope (in parallel, at most ``workers`` at a time) and merge the reports in scope order.
    A scope that fails (role not assumable, region disabled) becomes an error line, never an exception.
    ``select`` keeps only some functions (``scan --function``)."""
    lock, scanned = threading.Lock(), {scope: 0 for scope in scopes}
    runtime.bot_account()
    if act:
        runtime.store  # noqa: B018 - open the shared state store once, before the threads start

    def one(scope: Scope) -> dict[str, Any]:
        def counted(done: int, total: int | None) -> None:
            with lock:
                scanned[scope] = done
                if progress:
                    progress(sum(scanned.values()), None)

        try:
            engine = runtime.engine(scope.account, scope.region)
            return engine.sweep(act=act, progress=counted, select=select).to_json()
        except (ClientError, BotoCoreError) as exc:
            return {"account": scope.account, "region": scope.region, "functions_scanned": 0, "findings": [],
                    "errors": [f"could not sweep: {describe_error(exc, operation=True)}"],
                    "refused": refusal(exc, scope.region if len(scopes) == 1 else f"{scope.account}/{scope.region}")}

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(scopes) or 1))) as pool:
        reports = list(pool.map(one, scopes))
    return merge(runtime.bot_account(), runtime.home_region, scopes, reports)


def refusal(exc: BaseException, where: str) -> str:
    """One line saying why a scope could not be listed (the scan is then incomplete).

    Example:
        >>> from botocore.exceptions import ClientError
        >>> refusal(ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        ...                     "ListFunctions"), "us-east-1")
        'AWS refused ListFunctions in us-east-1: AccessDeniedException: not authorized'
    """
    if isinstance(exc, ClientError):
        return f"AWS refused {exc.operation_name} in {where}: {describe_error(exc)}"
    return f"could not reach AWS in {where}: {plain(exc)}"


def merge(account: str, region: str, scopes: list[Scope], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from per-scope reports (the single-region contract plus ``scan_id`` and ``scopes``);
    ``account`` / ``region`` name the scope when there is exactly one (else null). ``complete`` is false when a
    scope could not be listed (its ``refused`` says why): such a scan never passes a gate."""
    one = scopes[0] if len(scopes) == 1 else None
    merged: dict[str, Any] = {"scan_id": uuid.uuid4().hex, "account": one.account if one else None,
                              "region": one.region if one else None, "functions_scanned": 0, "findings": [],
                              "errors": [], "scopes": [], "complete": all("refused" not in r for r in reports)}
    for scope, report in zip(scopes, reports, strict=False):
        merged["functions_scanned"] += report["functions_scanned"]
        merged["findings"].extend({**f, "account": scope.account, "region": scope.region}
                                  for f in report["findings"])
        merged["errors"].extend(f"{scope.account}/{scope.region}: {e}" if not one else e for e in report["errors"])
        merged["scopes"].append({"account": scope.account, "region": scope.region,
                                 "functions_scanned": report["functions_scanned"],
                                 "findings": len(report["findings"]), "errors": len(report["errors"]),
                                 "complete": "refused" not in report,
                                 **({"refused": report["refused"]} if "refused" in report else {})})
    return merged
