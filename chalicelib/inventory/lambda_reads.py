"""Lambda-side facets beyond the configuration: reserved concurrency, event source mappings, runaway alarms,
recursion config.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_not_found, is_transient, is_unsupported
from chalicelib.core.model import AccountFacts, EventSourceMapping, FunctionRef, FunctionSnapshot
from chalicelib.domain import alarms
from chalicelib.inventory.common import ReadContext, Reader, _mapping, _unqualified

UNSUPPORTED = "GetAccountSettings is not available here"
ACCOUNT_FACTS_MAX_AGE_S = 300.0  # the concurrency limit moves with a quota request, the pool with reservations


class AccountFactsCache:
    """Account facts (GetAccountSettings) kept for ``max_age`` seconds per account and region: the runtime
    holds one per Lambda container, so a burst of events asks AWS once every few minutes, not once each.

    Example:
        >>> clock = iter([0.0, 10.0, 400.0]).__next__
        >>> cache, reads = AccountFactsCache(clock=clock), []
        >>> read = lambda: reads.append(1) or AccountFacts(1000, 900)
        >>> [cache.get(("1", "r"), read).concurrency_limit for _ in range(3)], len(reads)
        ([1000, 1000, 1000], 2)
    """

    def __init__(self, max_age: float = ACCOUNT_FACTS_MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self.clock = max_age, clock
        self._facts: dict[tuple[str, str], tuple[float, AccountFacts]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], read: Callable[[], AccountFacts]) -> AccountFacts:
        now = self.clock()
        with self._lock:
            cached = self._facts.get(key)
        if cached and now - cached[0] < self.max_age:
            return cached[1]
        facts = read()
        if not facts.unavailable or facts.unavailable == UNSUPPORTED:  # a failed read is retried next run
            with self._lock:
                self._facts[key] = (now, facts)
        return facts


class LambdaReader(Reader):
    """Lambda facets beyond the configuration: concurrency, mappings, runaway alarms, recursion config."""

    def __init__(self, ctx: ReadContext, facts: AccountFactsCache | None = None) -> None:
        super().__init__(ctx)
        self._facts = facts or AccountFactsCache()
        self._run_facts: AccountFacts | None = None

    def account_facts(self) -> AccountFacts:
        """Concurrency limit and unreserved pool (once per run; across runs see :class:`AccountFactsCache`);
        ``unavailable`` says why when AWS will not tell."""
        if self._run_facts is None:
            self._run_facts = self._facts.get((self.account, self.region), self._read_account_facts)
        return self._run_facts

    def _read_account_facts(self) -> AccountFacts:
        try:
            limits = self.clients("lambda").get_account_settings().get("AccountLimit", {})
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            return AccountFacts(unavailable=UNSUPPORTED if is_unsupported(exc) else
                                f"GetAccountSettings failed: {error_code(exc) or 'error'}")
        return AccountFacts(limits.get("ConcurrentExecutions"), limits.get("UnreservedConcurrentExecutions"))

    def mapping(self, uuid: str) -> EventSourceMapping | None:
        """Re-read one event source mapping; None if it is gone."""
        try:
            return _mapping(self.clients("lambda").get_event_source_mapping(UUID=uuid))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def reserved_concurrency(self, ref: FunctionRef) -> int | None:
        """The function's reserved concurrency (GetFunctionConcurrency: exact, 0 included); None if unset."""
        response = self.clients("lambda").get_function_concurrency(FunctionName=ref.arn)
        value = response.get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    def load_concurrency(self, snapshots: list[FunctionSnapshot]) -> None:
        """Reserved concurrency (0 included; None when unset) of each function not read yet. AWS lists it for
        no function in bulk: one GetFunction each, in parallel. GetFunction, not GetFunctionConcurrency: its
        quota is 100 requests a second, the other control-plane reads share 15 (Lambda quotas page)."""
        def read(snapshot: FunctionSnapshot) -> None:
            response = self.clients("lambda").get_function(FunctionName=snapshot.arn)
            snapshot.reserved_concurrency = (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
            snapshot.loaded.add("concurrency")

        self.ctx.parallel("lambda", read, [s for s in snapshots if "concurrency" not in s.loaded])

    def load_mappings(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``mappings`` facet: from the region's index in a sweep, else the one function's (read once per run,
        also when the chains facet asks for them at the same time)."""
        name = snapshots[0].name
        by_function = self.mapping_index() if bulk else \
            self.ctx.once(f"mappings#{name}", lambda: self._read_mappings(name))
        for snapshot in snapshots:
            snapshot.mappings = tuple(by_function.get(snapshot.arn, ()))
            snapshot.loaded.add("mappings")

    def mapping_index(self) -> dict[str, list[EventSourceMapping]]:
        """Every event source mapping in the region, by unqualified function ARN (read once per run)."""
        return self.ctx.once("mapping_index", lambda: self._read_mappings(None))

    def _read_mappings(self, function_name: str | None) -> dict[str, list[EventSourceMapping]]:
        paginator = self.clients("lambda").get_paginator("list_event_source_mappings")
        by_function: dict[str, list[EventSourceMapping]] = defaultdict(list)
        for page in paginator.paginate(**({"FunctionName": function_name} if function_name else {})):
            for item in page.get("EventSourceMappings", []):
                by_function[_unqualified(item.get("FunctionArn", ""))].append(_mapping(item))
        return by_function

    def load_alarms(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        index = self.alarm_index() if bulk else self._read_alarms(AlarmNames=[alarms.alarm_name(snapshots[0].name)])
        for snapshot in snapshots:
            snapshot.alarm = index.get(snapshot.name)
            snapshot.loaded.add("alarms")

    def alarm_index(self) -> dict[str, dict[str, Any]]:
        """Every managed runaway alarm in the region (one DescribeAlarms by prefix), by function name."""
        return self.ctx.once("alarm_index", lambda: self._read_alarms(AlarmNamePrefix=alarms.PREFIX))

    def _read_alarms(self, **selector: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        paginator = self.clients("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"], **selector):
            for alarm in page.get("MetricAlarms", []):
                name = alarms.function_of_alarm(alarm.get("AlarmName"))
                if name:
                    found[name] = alarms.put_arguments(alarm)
        return found

    def alarm(self, alarm_name: str) -> dict[str, Any] | None:
        """One metric alarm as DescribeAlarms returns it, read fresh (state, definition); None when there is none."""
        found = self.clients("cloudwatch").describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
        return next(iter(found.get("MetricAlarms", [])), None)

    def alarm_state(self, alarm_name: str) -> str | None:
        """``OK`` / ``ALARM`` / ``INSUFFICIENT_DATA`` of one metric alarm; None when there is no such alarm."""
        described = self.alarm(alarm_name)
        return str(described.get("StateValue")) if described else None

    def recursion_config(self, ref: FunctionRef) -> tuple[str, str]:
        """Lambda's recursive loop setting (``Allow`` / ``Terminate``), or ``("unavailable", why)``: read fresh
        for a kill and its undo, which go on without it whatever the read answered."""
        try:
            value, why = self._recursion(ref.arn)
        except ClientError as exc:
            return "unavailable", f"GetFunctionRecursionConfig failed: {error_code(exc) or 'error'}"
        if why:
            return "unavailable", why
        if value not in ("Allow", "Terminate"):
            return "unavailable", f"unexpected RecursiveLoop value {str(value)[:40]!r}"
        return str(value), ""

    def _recursion(self, function_arn: str) -> tuple[str | None, str]:
        """The one read of the setting: (``RecursiveLoop`` as Lambda answers, '') or (None, why it cannot be read
        here: the API is missing or denied). Any other error is raised (a transient one is retried by the event)."""
        try:
            response = self.clients("lambda").get_function_recursion_config(FunctionName=function_arn)
        except ClientError as exc:
            if is_unsupported(exc):
                return None, "GetFunctionRecursionConfig is not available here"
            if error_code(exc) == "AccessDeniedException":
                return None, "GetFunctionRecursionConfig failed: AccessDeniedException"
            raise
        return response.get("RecursiveLoop"), ""

    def function_mappings(self, snapshot: FunctionSnapshot) -> tuple[EventSourceMapping, ...]:
        """The function's event source mappings, read fresh (never from the run's bulk index)."""
        snapshot.mappings = tuple(self._read_mappings(snapshot.name).get(snapshot.arn, ()))
        snapshot.loaded.add("mappings")
        return snapshot.mappings

    def load_recursion(self, snapshots: list[FunctionSnapshot]) -> None:
        """Lambda's recursive loop setting of each function (one call each, in parallel)."""
        self.ctx.parallel("lambda", self._load_recursion, [s for s in snapshots if "recursion" not in s.loaded])

    def _load_recursion(self, snapshot: FunctionSnapshot) -> None:
        snapshot.recursive_loop, why = self._recursion(snapshot.arn)
        if why:
            snapshot.unavailable["recursion"] = why
        snapshot.loaded.add("recursion")

