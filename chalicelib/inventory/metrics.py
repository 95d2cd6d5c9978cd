"""CloudWatch metrics (GetMetricData, 500 series a call; ListMetrics as a bulk pre-filter), function URLs and
provisioned-concurrency configs.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import is_not_found, is_unsupported
from chalicelib.core.model import EACH_PROVISIONED, FunctionSnapshot, MetricQuery, ProvisionedConfig
from chalicelib.domain import alarms
from chalicelib.inventory.common import ReadContext, Reader

METRIC_QUERIES_PER_CALL = 500
# ListMetrics lists series with data in the last two weeks: the sweep's bulk way to find which functions
# have provisioned concurrency serving requests, and which have a function URL serving requests.
PROVISIONED_METRIC = "ProvisionedConcurrentExecutions"
URL_METRIC = "UrlRequestCount"


class MetricReader(Reader):
    """CloudWatch metrics, function URLs and provisioned-concurrency configs."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._provisioned_unavailable = ""

    def load_metrics(self, snapshots: list[FunctionSnapshot], queries: dict[str, set[MetricQuery]]) -> None:
        wanted = [(snapshot, q) for snapshot in snapshots for q in sorted(queries.get(snapshot.arn, set()), key=repr)
                  if not q.qualifier]  # per alias / version series are read with the provisioned facet
        for snapshot, query in wanted:
            snapshot.metrics[query] = None
            snapshot.loaded.add("metrics")
        self._read_metrics(wanted)

    def _read_metrics(self, wanted: list[tuple[FunctionSnapshot, MetricQuery]]) -> None:
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        by_window: dict[tuple[int, int, int], list[tuple[FunctionSnapshot, MetricQuery]]] = defaultdict(list)
        for item in wanted:
            by_window[(item[1].days, item[1].period, item[1].lag_days)].append(item)
        batches = []
        for (days, period, lag), items in by_window.items():
            # GetMetricData answers at most 100,800 datapoints a call; a per-minute series over 14 days is 20,160,
            # so those go 5 to a call (the paginator would page them anyway, this keeps each page whole)
            per_call = min(METRIC_QUERIES_PER_CALL, max(1, 100_800 // (days * 86400 // period))) if period else \
                METRIC_QUERIES_PER_CALL
            batches += [(items[start:start + per_call], days, now - timedelta(days=lag))
                        for start in range(0, len(items), per_call)]
        self.ctx.parallel("cloudwatch", lambda batch: self._metric_batch(*batch), batches)

    def _metric_batch(self, items: list[tuple[FunctionSnapshot, MetricQuery]], days: int, now: datetime) -> None:
        requests = [{
            "Id": f"m{i}",
            "MetricStat": {"Metric": {"Namespace": q.namespace, "MetricName": q.metric,
                                      "Dimensions": _dimensions(s, q)},
                           "Period": q.period or days * 86400, "Stat": q.stat},
            "ReturnData": True,
        } for i, (s, q) in enumerate(items)]
        paginator = self.clients("cloudwatch").get_paginator("get_metric_data")
        collected: dict[int, list[float]] = defaultdict(list)  # a series' values may span pages
        for page in paginator.paginate(MetricDataQueries=requests, StartTime=now - timedelta(days=days),
                                       EndTime=now):
            for result in page.get("MetricDataResults", []):
                collected[int(result["Id"][1:])].extend(result.get("Values") or [])
        for index, values in collected.items():
            if values:
                snapshot, query = items[index]
                snapshot.metrics[query] = max(values) if query.period else _reduce(query.stat, values)

    def metric_series(self, function_name: str, stats: list[tuple[str, str]], start: datetime, end: datetime,
                      period: int = 60) -> dict[str, dict[datetime, float]]:
        """One function's AWS/Lambda series, ``period`` by ``period`` between ``start`` and ``end`` (one
        GetMetricData): metric name -> period start -> value. ``stats``: (metric, statistic) pairs.

        Example:
            inventory.metric_series("orders-api", [("Invocations", "Sum")], start, end)["Invocations"]
            # -> {datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc): 9000.0, ...}
        """
        queries = [{"Id": f"m{i}", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                       "Dimensions": [{"Name": "FunctionName", "Value": function_name}]},
            "Period": period, "Stat": stat}} for i, (metric, stat) in enumerate(stats)]
        found: dict[str, dict[datetime, float]] = {metric: {} for metric, _ in stats}
        paginator = self.clients("cloudwatch").get_paginator("get_metric_data")
        for page in paginator.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end):
            for result in page.get("MetricDataResults", []):
                metric = stats[int(result["Id"][1:])][0]
                for stamp, value in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False):
                    found[metric][stamp.astimezone(timezone.utc)] = float(value)
        return found

    def metric_index(self, metric: str) -> dict[str, set[str]]:
        """Functions with ``metric`` series in AWS/Lambda over the last two weeks (ListMetrics, read once per
        run): function name -> the qualifiers seen in the ``Resource`` dimension."""
        return self.ctx.once(f"metric_index:{metric}", lambda: self._list_metrics(metric))

    def _list_metrics(self, metric: str, function_name: str = "") -> dict[str, set[str]]:
        dimensions = [{"Name": "FunctionName", "Value": function_name}] if function_name else []
        pages = self.clients("cloudwatch").get_paginator("list_metrics").paginate(
            Namespace="AWS/Lambda", MetricName=metric, Dimensions=dimensions)
        return _qualifiers([item for page in pages for item in page.get("Metrics", [])])

    def load_urls(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """Function URLs. A sweep: the functions whose URL served requests (one ListMetrics for all). One
        function: its URL configs, read only when no API route fronts it already (``urls`` is declared
        after ``routes`` in the inventory's facet order, so ``routes`` is known here when it was needed)."""
        served = self.metric_index(URL_METRIC) if bulk else {}
        unrouted = [s for s in snapshots if not bulk and not s.routes]
        for snapshot, url in zip(unrouted, self.ctx.parallel("lambda", self._read_function_url, unrouted),
                                 strict=True):
            snapshot.function_url = url
        for snapshot in snapshots:
            if bulk:
                snapshot.function_url = "function URL" if snapshot.name in served else ""
            snapshot.loaded.add("urls")

    def _read_function_url(self, snapshot: FunctionSnapshot) -> str:
        client = self.clients("lambda")
        try:
            configs = [c for page in client.get_paginator("list_function_url_configs").paginate(
                FunctionName=snapshot.arn) for c in page.get("FunctionUrlConfigs", [])]
            return str(configs[0]["FunctionUrl"]) if configs else ""
        except ClientError as exc:
            if is_not_found(exc):
                return ""
            if not is_unsupported(exc):
                raise
        try:  # where ListFunctionUrlConfigs is missing: the unqualified URL only
            return str(client.get_function_url_config(FunctionName=snapshot.arn)["FunctionUrl"])
        except ClientError as exc:
            if is_not_found(exc):
                return ""
            raise

    def load_provisioned(self, snapshots: list[FunctionSnapshot], bulk: bool,
                         queries: dict[str, set[MetricQuery]]) -> None:
        """Provisioned-concurrency configs, then the per alias / version metrics checks asked for. A sweep
        reads configs only of functions whose provisioned concurrency served requests (ListMetrics)."""
        in_use = self.metric_index(PROVISIONED_METRIC) if bulk else None
        wanted: list[tuple[FunctionSnapshot, MetricQuery]] = []
        serving = [s for s in snapshots if in_use is None or s.name in in_use]
        self.ctx.parallel("lambda", lambda snapshot: self._read_provisioned(snapshot, in_use), serving)
        for snapshot in snapshots:
            if in_use is not None and snapshot.name not in in_use:
                snapshot.provisioned, snapshot.provisioned_note = (), "none served requests in the last 14 days"
            snapshot.loaded.add("provisioned")
            for query in queries.get(snapshot.arn, set()):
                if query.qualifier == EACH_PROVISIONED:
                    for config in snapshot.provisioned:
                        concrete = dataclasses.replace(query, qualifier=config.qualifier)
                        snapshot.metrics[concrete] = None
                        wanted.append((snapshot, concrete))
        self._read_metrics(wanted)

    def alarm_contributors(self, alarm_name: str) -> list[dict[str, Any]]:
        """A multi-time-series alarm's contributors in ALARM as DescribeAlarmContributors gives them
        (``ContributorId``, ``ContributorAttributes`` such as ``{"FunctionName": ...}``, ``StateReason``,
        ``StateTransitionedTimestamp``), every page (CloudWatch keeps at most 100 in ALARM; at most
        ``MAX_CONTRIBUTOR_PAGES`` pages are read). Raises ``ContributorsUnavailable`` where the API is missing."""
        client, token = self.clients("cloudwatch"), None
        found: list[dict[str, Any]] = []
        for _ in range(MAX_CONTRIBUTOR_PAGES):
            try:
                paging: dict[str, str] = {"NextToken": token} if token else {}
                page = client.describe_alarm_contributors(AlarmName=alarm_name, **paging)
            except ClientError as exc:
                if is_unsupported(exc):
                    raise ContributorsUnavailable("DescribeAlarmContributors is not available here: the sentinel "
                                                  "cannot name the function; use per-function alarms") from exc
                raise
            found.extend(dict(c) for c in page.get("AlarmContributors", []) if isinstance(c, dict))
            token = page.get("NextToken")
            if not token:
                return found
        return found

    def sentinel_alarms(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The sentinel alarms of the scope (DescribeAlarms by prefix), as PutMetricAlarm arguments, by name."""
        pages = self.clients("cloudwatch").get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])
        return {a["AlarmName"]: alarms.put_arguments(a) for page in pages for a in page.get("MetricAlarms", [])}

    def _read_provisioned(self, snapshot: FunctionSnapshot, in_use: dict[str, set[str]] | None) -> None:
        """ListProvisionedConcurrencyConfigs; where it is unavailable, the qualifiers CloudWatch shows with
        provisioned-concurrency metrics (sizes unknown), and ``provisioned_note`` says so."""
        if not self._provisioned_unavailable:
            try:
                pages = self.clients("lambda").get_paginator("list_provisioned_concurrency_configs").paginate(
                    FunctionName=snapshot.arn)
                snapshot.provisioned = tuple(_provisioned(item) for page in pages
                                             for item in page.get("ProvisionedConcurrencyConfigs", []))
                snapshot.provisioned_note = "read from ListProvisionedConcurrencyConfigs"
                return
            except ClientError as exc:
                if is_not_found(exc):
                    snapshot.provisioned, snapshot.provisioned_note = (), "the function is gone"
                    return
                if not is_unsupported(exc):
                    raise
                self._provisioned_unavailable = "unavailable: ListProvisionedConcurrencyConfigs is not supported here"
        seen = in_use if in_use is not None else self._list_metrics(PROVISIONED_METRIC, snapshot.name)
        snapshot.provisioned = tuple(ProvisionedConfig(q) for q in sorted(seen.get(snapshot.name, ())))
        snapshot.provisioned_note = self._provisioned_unavailable


MAX_CONTRIBUTOR_PAGES = 50  # CloudWatch keeps at most 100 contributors in ALARM; a bound, not a page-size promise


class ContributorsUnavailable(RuntimeError):
    """DescribeAlarmContributors is missing where the bot runs (moto, an old partition)."""


def _dimensions(snapshot: FunctionSnapshot, query: MetricQuery) -> list[dict[str, str]]:
    """CloudWatch dimensions of a function's series; an alias / version adds ``Resource`` = ``name:qualifier``."""
    dimensions = [{"Name": "FunctionName", "Value": snapshot.name}]
    if query.qualifier:
        dimensions.append({"Name": "Resource", "Value": f"{snapshot.name}:{query.qualifier}"})
    return dimensions


def _reduce(stat: str, values: list[float]) -> float:
    """Combine one series' datapoints over the look-back as its statistic says."""
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat in ("Sum", "SampleCount"):
        return sum(values)
    return sum(values) / len(values)


def _provisioned(item: dict[str, Any]) -> ProvisionedConfig:
    def count(key: str) -> int | None:
        return int(item[key]) if item.get(key) is not None else None

    return ProvisionedConfig(
        qualifier=str(item.get("FunctionArn", "")).rsplit(":", 1)[-1],
        requested=count("RequestedProvisionedConcurrentExecutions"),
        allocated=count("AllocatedProvisionedConcurrentExecutions"),
        status=str(item.get("Status", "")), last_modified=str(item.get("LastModified", "")))


def _qualifiers(metrics: list[dict[str, Any]]) -> dict[str, set[str]]:
    """ListMetrics items -> function name -> the qualifiers of its ``Resource`` dimension (``name:qualifier``)."""
    found: dict[str, set[str]] = defaultdict(set)
    for item in metrics:
        dims = {d["Name"]: d["Value"] for d in item.get("Dimensions", [])}
        if "FunctionName" in dims:
            resource = dims.get("Resource", "")
            found[dims["FunctionName"]].update([resource.split(":", 1)[1]] if ":" in resource else [])
    return dict(found)

