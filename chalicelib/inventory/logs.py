"""Log searches for tmp-storage: Logs Insights over many log groups in a sweep, FilterLogEvents for one function.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core import quotas
from chalicelib.core.aws import describe_error, error_code, is_not_found
from chalicelib.core.log import logger
from chalicelib.core.model import FunctionSnapshot, LogHits, LogSearch
from chalicelib.core.quotas import INSIGHTS_CONCURRENT_QUERIES
from chalicelib.inventory.common import (
    _ACCOUNT_PREFIX,
    DEFAULT_LOG_PREFIX,
    INSIGHTS_MAX_GROUPS,
    INSIGHTS_POLL_S,
    INSIGHTS_QUERY_WAIT_S,
    INSIGHTS_WAIT_S,
    MAX_FILTER_PAGES,
    ReadContext,
    Reader,
    _chunks,
)


class LogReader(Reader):
    """Log searches (tmp-storage): Logs Insights in a sweep, FilterLogEvents for one function."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._log_groups: set[str] = set()
        self._log_prefixes_read: set[str] = set()

    def load_logs(self, snapshots: list[FunctionSnapshot], bulk: bool, searches: dict[str, LogSearch]) -> None:
        """The ``logs`` facet: the hits of each function's log search (``searches``: by function ARN)."""
        by_search: dict[LogSearch, list[FunctionSnapshot]] = defaultdict(list)
        for snapshot in snapshots:
            search = searches.get(snapshot.arn)
            if search:
                by_search[search].append(snapshot)
            snapshot.loaded.add("logs")
        for search, group in by_search.items():
            if bulk:
                self._insights(group, search)
            else:
                for snapshot in group:
                    self._filter_log_events(snapshot, search)

    def _filter_log_events(self, snapshot: FunctionSnapshot, search: LogSearch) -> None:
        now_ms = int(time.time() * 1000)
        request: dict[str, Any] = {"logGroupName": snapshot.log_group, "startTime": now_ms - search.hours * 3600000,
                                   "filterPattern": " ".join(f'?"{p}"' for p in search.patterns)}
        count, last = 0, 0
        try:
            for _ in range(MAX_FILTER_PAGES):
                page = self.clients("logs").filter_log_events(**request)
                for event in page.get("events", []):
                    if _mentions(event.get("message", ""), search.patterns):
                        count, last = count + 1, max(last, int(event.get("timestamp", 0)))
                request["nextToken"] = page.get("nextToken")
                if count or not request["nextToken"]:
                    break
            else:
                snapshot.unavailable["logs"] = (
                    f"searched the first {MAX_FILTER_PAGES} pages of {snapshot.log_group} only"
                )
        except ClientError as exc:
            if not is_not_found(exc):
                raise
        snapshot.log_hits = LogHits(count, last, snapshot.log_group)

    def _insights(self, snapshots: list[FunctionSnapshot], search: LogSearch) -> None:
        existing = self._existing_log_groups({s.log_group for s in snapshots})
        end = int(time.time()) + 60
        query = {"startTime": end - 60 - search.hours * 3600, "endTime": end,
                 "queryString": _insights_query(search.patterns), "limit": 10000}
        chunks = _chunks(sorted({s.log_group for s in snapshots} & existing), INSIGHTS_MAX_GROUPS)
        hits: dict[str, tuple[int, int]] = {}
        failed: dict[str, str] = {}
        for chunk, result in self._run_queries(chunks, query):
            status = result.get("status", "")
            if status != "Complete":
                failed.update({g: f"Logs Insights query {status or 'did not finish'}" for g in chunk})
            for row in result.get("results", []):
                _add_insights_row(hits, row, search.patterns)
        for snapshot in snapshots:
            if snapshot.log_group in failed:
                snapshot.unavailable["logs"] = failed[snapshot.log_group]
            snapshot.log_hits = LogHits(*hits.get(snapshot.log_group, (0, 0)), snapshot.log_group)

    def _run_queries(self, chunks: list[list[str]], query: dict[str, Any]) -> Iterator[tuple[list[str], dict]]:
        """Run one Logs Insights query per chunk of log groups, at most the account's share of concurrent queries
        at a time (``insights_slots``: shared by every region swept in this process), queueing the rest; yields
        (chunk, final GetQueryResults answer). Each query has its own budget (``INSIGHTS_QUERY_WAIT_S`` of polls
        from its start): a query still running then is stopped (StopQuery: an abandoned query would keep
        running, billed and holding one of the account's slots, for up to an hour) and its functions reported
        unread. A query AWS refuses as over its own limit (other queries of the account) waits for a slot; after
        ``INSIGHTS_WAIT_S`` of such waits what has not started is reported. Budgets count polls, not the clock:
        the same on any machine."""
        logs, slots = self.clients("logs"), insights_slots(self.account)
        queue, running = deque(chunks), list[list[Any]]()  # running: [chunk, query id, polls left]
        idle = int(INSIGHTS_WAIT_S / INSIGHTS_POLL_S)
        try:
            while queue or running:
                outcome = self._start_queries(logs, slots, queue, running, query)
                if not running:
                    if idle <= 0:
                        yield from ((chunk, {"status": "not started (Logs Insights busy)"}) for chunk in queue)
                        return
                    if outcome == "limit":
                        self.ctx.sleep(INSIGHTS_POLL_S)
                    idle -= 1
                    continue
                yield from self._poll(logs, slots, running)
                if running:
                    self.ctx.sleep(INSIGHTS_POLL_S)
        finally:
            for entry in running:  # an error mid-way: stop what is left behind, give back its slot
                _stop_query(logs, entry[1])
                slots.release()

    def _start_queries(self, logs: Any, slots: threading.BoundedSemaphore, queue: deque[list[str]],
                       running: list[list[Any]], query: dict[str, Any]) -> str:
        """Start queued queries while a slot is free: ``busy`` when none is (waiting up to one poll interval for
        another region of the account to free one when nothing of ours runs), ``limit`` when AWS says the
        account is at its own limit, ``started`` when the queue is empty."""
        polls = int(INSIGHTS_QUERY_WAIT_S / INSIGHTS_POLL_S)
        while queue:
            if not (slots.acquire(timeout=INSIGHTS_POLL_S) if not running else slots.acquire(blocking=False)):
                return "busy"
            try:
                running.append([queue[0], logs.start_query(logGroupNames=queue[0], **query)["queryId"], polls])
            except ClientError as exc:
                slots.release()
                if error_code(exc) != "LimitExceededException":
                    raise
                return "limit"
            queue.popleft()
        return "started"

    @staticmethod
    def _poll(logs: Any, slots: threading.BoundedSemaphore, running: list[list[Any]]
              ) -> Iterator[tuple[list[str], dict]]:
        """One GetQueryResults per running query: yield those that ended, stop those out of their budget."""
        for entry in list(running):
            chunk, query_id, polls = entry
            result = logs.get_query_results(queryId=query_id)
            if result.get("status", "") in ("Scheduled", "Running"):
                if polls > 0:
                    entry[2] = polls - 1
                    continue
                _stop_query(logs, query_id)
                result = {"status": f"unfinished after {INSIGHTS_QUERY_WAIT_S:g} s: stopped, logs not read"}
            running.remove(entry)
            slots.release()
            yield chunk, result

    def _existing_log_groups(self, groups: set[str]) -> set[str]:
        """Which of ``groups`` exist (a query naming a missing group fails): the /aws/lambda/ prefix is
        listed once per run, other groups by their own prefix."""
        paginator = self.clients("logs").get_paginator("describe_log_groups")
        prefixes = {DEFAULT_LOG_PREFIX} if any(g.startswith(DEFAULT_LOG_PREFIX) for g in groups) else set()
        prefixes |= {g for g in groups if not g.startswith(DEFAULT_LOG_PREFIX)}
        for prefix in sorted(prefixes - self._log_prefixes_read):
            for page in paginator.paginate(logGroupNamePrefix=prefix):
                self._log_groups.update(g["logGroupName"] for g in page.get("logGroups", []))
            self._log_prefixes_read.add(prefix)
        return groups & self._log_groups


_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _stop_query(logs: Any, query_id: str) -> None:
    """StopQuery, best effort: a query that ended meanwhile is not an error worth more than a log line."""
    try:
        logs.stop_query(queryId=query_id)
    except ClientError as exc:
        logger.info("StopQuery failed", extra={"query": query_id, "error": describe_error(exc)})


def insights_slots(account: str) -> threading.BoundedSemaphore:
    """The account's Logs Insights query slots in this process: the bot's share (``max_quota_share``) of the
    account's concurrent queries (``chalicelib.core.quotas.INSIGHTS_CONCURRENT_QUERIES``).

    Example:
        >>> insights_slots("123456789012") is insights_slots("123456789012")
        True
    """
    with _SLOTS_LOCK:
        if account not in _SLOTS:
            share = quotas.pacer().share
            _SLOTS[account] = threading.BoundedSemaphore(max(1, int(share * INSIGHTS_CONCURRENT_QUERIES)))
        return _SLOTS[account]


def _mentions(message: str, patterns: tuple[str, ...]) -> bool:
    lowered = message.lower()
    return any(p.lower() in lowered for p in patterns)


def _insights_query(patterns: tuple[str, ...]) -> str:
    """``fields`` first (moto, which runs no ``filter``/``stats``, then returns the raw lines, checked here)."""
    regex = "|".join(re.escape(p).replace("/", "\\/") for p in patterns)
    return (f"fields @timestamp, @log, @message | filter @message like /(?i)({regex})/ "
            f"| stats count(*) as hits, max(@timestamp) as last by @log")


def _add_insights_row(hits: dict[str, tuple[int, int]], row: list[dict[str, str]], patterns: tuple[str, ...]) -> None:
    fields = {f.get("field", ""): f.get("value", "") for f in row}
    group = _ACCOUNT_PREFIX.sub("", fields.get("@log", ""))
    if "hits" in fields:
        count, last = int(float(fields["hits"] or 0)), _timestamp_ms(fields.get("last", ""))
    elif _mentions(fields.get("@message", ""), patterns):
        count, last = 1, _timestamp_ms(fields.get("@timestamp", ""))
    else:
        return
    before = hits.get(group, (0, 0))
    hits[group] = (before[0] + count, max(before[1], last))


def _timestamp_ms(value: str) -> int:
    """Insights timestamps: epoch milliseconds, or ``2025-06-10 14:02:37.412`` (UTC)."""
    if value.isdigit():
        return int(value)
    try:
        return int(
            datetime.strptime(value[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() * 1000
        )
    except ValueError:
        return 0

