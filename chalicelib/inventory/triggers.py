"""What invokes a function: S3 bucket notifications and SNS subscriptions.

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import error_code, is_not_found, is_transient
from chalicelib.inventory.common import ReadContext, Reader, _unqualified
from chalicelib.model import FunctionSnapshot, Trigger

LIST_BUCKETS_PAGE = 1000  # MaxBuckets: 1 to 10,000


class TriggerReader(Reader):
    """What invokes a function: S3 bucket notifications and SNS subscriptions."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._buckets: dict[str, list[tuple[str, Trigger]]] = {}
        self._unreadable_buckets: set[str] = set()
        self._topics: dict[str, list[tuple[str, Trigger]]] = {}

    def load_triggers(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``triggers`` facet: each function's S3 notifications and SNS subscriptions."""
        if bulk:
            s3, sns = self._bucket_triggers(None), self._subscription_triggers(None)
        for snapshot in snapshots:
            if not bulk:
                policy = self.ctx.function_policy(snapshot.arn) or {}
                s3 = self._bucket_triggers(_invoke_sources(policy, "s3.amazonaws.com"))
                sns = self._subscription_triggers(_invoke_sources(policy, "sns.amazonaws.com"))
            snapshot.triggers = tuple(s3.get(snapshot.arn, ())) + tuple(sns.get(snapshot.arn, ()))
            if self._unreadable_buckets:
                snapshot.unavailable["triggers"] = ("notifications unreadable for bucket(s) "
                                                    + ", ".join(sorted(self._unreadable_buckets)[:5]))
            snapshot.loaded.add("triggers")

    def _bucket_triggers(self, sources: set[str] | None) -> dict[str, list[Trigger]]:
        """Function ARN → its S3 triggers, over ``sources`` (bucket ARNs) or, with None, every bucket of the
        region (ListBuckets, then one GetBucketNotificationConfiguration per bucket, once per run)."""
        if sources is None:
            self.ctx.once("all_buckets", self._read_all_buckets)
            names = set(self._buckets)
        else:
            names = {arn.split(":::", 1)[1].split("/", 1)[0] for arn in sources if arn.startswith("arn:aws")
                     and ":s3:::" in arn}
            self.ctx.parallel("s3", self._read_bucket, sorted(names - set(self._buckets)))
        index: dict[str, list[Trigger]] = defaultdict(list)
        for name in sorted(names):
            for function_arn, trigger in self._buckets.get(name, []):
                index[function_arn].append(trigger)
        return index

    def warm(self) -> None:
        """Read every bucket's notifications and every SNS subscription of the region, once a run."""
        self.ctx.once("all_buckets", self._read_all_buckets)
        self._subscription_triggers(None)

    def _read_all_buckets(self) -> None:
        # Paginated on purpose: AWS refuses unpaginated ListBuckets in accounts whose bucket quota is above 10,000
        # (botocore's ListBuckets documentation); MaxBuckets is the paginator's page size.
        pages = self.clients("s3").get_paginator("list_buckets").paginate(
            BucketRegion=self.region, PaginationConfig={"PageSize": LIST_BUCKETS_PAGE})
        self.ctx.parallel("s3", self._read_bucket, [
            b["Name"] for page in pages for b in page.get("Buckets", [])
            if b.get("BucketRegion", self.region) == self.region and b["Name"] not in self._buckets])

    def _read_bucket(self, name: str) -> None:
        try:
            config = self.clients("s3").get_bucket_notification_configuration(Bucket=name)
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: retried by Lambda rather than evaluated without the bucket
            if error_code(exc) not in ("NoSuchBucket", "404"):
                self._unreadable_buckets.add(f"{name} ({error_code(exc) or 'error'})")
            self._buckets[name] = []
            return
        found = []
        for item in config.get("LambdaFunctionConfigurations", []):
            rules = {str(r.get("Name", "")).lower(): str(r.get("Value", ""))
                     for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])}
            found.append((_unqualified(item.get("LambdaFunctionArn", "")), Trigger(
                "s3", f"arn:aws:s3:::{name}", tuple(item.get("Events", [])), rules.get("prefix", ""),
                rules.get("suffix", ""), item.get("Id", ""))))
        self._buckets[name] = found

    def _subscription_triggers(self, sources: set[str] | None) -> dict[str, list[Trigger]]:
        """Function ARN → its SNS subscriptions: ListSubscriptions once per run, or the named topics only."""
        sns = self.clients("sns")
        if sources is None:
            return self.ctx.once("all_subscriptions", self._read_all_subscriptions)
        index: dict[str, list[Trigger]] = defaultdict(list)
        for topic in sorted(t for t in sources if t.split(":")[3:4] == [self.region]):
            if topic not in self._topics:
                try:
                    subs = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                            for s in page.get("Subscriptions", [])]
                except ClientError as exc:
                    if not is_not_found(exc):
                        raise
                    subs = []
                self._topics[topic] = _lambda_subscriptions(subs)
            for function_arn, trigger in self._topics[topic]:
                index[function_arn].append(trigger)
        return index

    def _read_all_subscriptions(self) -> dict[str, list[Trigger]]:
        index: dict[str, list[Trigger]] = defaultdict(list)
        for page in self.clients("sns").get_paginator("list_subscriptions").paginate():
            for function_arn, trigger in _lambda_subscriptions(page.get("Subscriptions", [])):
                index[function_arn].append(trigger)
        return index


def _invoke_sources(policy: dict[str, Any], service: str) -> set[str] | None:
    """The SourceArns a resource policy lets ``service`` invoke the function from; None when a statement
    allows the service without naming its source (then every source must be read)."""
    sources: set[str] = set()
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        named = principal.get("Service") if isinstance(principal, dict) else principal
        if statement.get("Effect") != "Allow" or service not in json.dumps(named):
            continue
        found = [v for op in (statement.get("Condition") or {}).values() if isinstance(op, dict)
                 for k, v in op.items() if k.lower() == "aws:sourcearn"]
        if not found:
            return None
        for value in found:
            sources.update(str(v) for v in (value if isinstance(value, list) else [value]))
    if any("*" in s or "?" in s for s in sources):
        return None
    return sources


def _lambda_subscriptions(subscriptions: list[dict[str, Any]]) -> list[tuple[str, Trigger]]:
    return [
        (_unqualified(s.get("Endpoint", "")), Trigger("sns", s.get("TopicArn", ""), id=s.get("SubscriptionArn", "")))
        for s in subscriptions
        if s.get("Protocol") == "lambda"
    ]

