"""What invokes a function: S3 bucket notifications and SNS subscriptions.

Part of :class:`chalicelib.inventory.Inventory` (a mixin: it shares the inventory's clients and caches)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import error_code, is_not_found
from chalicelib.inventory.common import ReaderBase, _unqualified
from chalicelib.model import FunctionSnapshot, Trigger

LIST_BUCKETS_PAGE = 1000  # MaxBuckets: 1 to 10,000


class TriggerReader(ReaderBase):
    """What invokes a function: S3 bucket notifications and SNS subscriptions."""

    def _load_triggers(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        if bulk:
            s3, sns = self._bucket_triggers(None), self._subscription_triggers(None)
        for snapshot in snapshots:
            if not bulk:
                policy = self.function_policy(snapshot.arn) or {}
                s3 = self._bucket_triggers(_invoke_sources(policy, "s3.amazonaws.com"))
                sns = self._subscription_triggers(_invoke_sources(policy, "sns.amazonaws.com"))
            snapshot.triggers = tuple(s3.get(snapshot.arn, ())) + tuple(sns.get(snapshot.arn, ()))
            if self._extra.unreadable_buckets:
                snapshot.unavailable["triggers"] = ("notifications unreadable for bucket(s) "
                                                    + ", ".join(sorted(self._extra.unreadable_buckets)[:5]))
            snapshot.loaded.add("triggers")

    def _bucket_triggers(self, sources: set[str] | None) -> dict[str, list[Trigger]]:
        """Function ARN → its S3 triggers, over ``sources`` (bucket ARNs) or, with None, every bucket of the
        region (ListBuckets, then one GetBucketNotificationConfiguration per bucket, once per run)."""
        if sources is None:
            if not self._extra.all_buckets_read:
                # Paginated on purpose: AWS refuses unpaginated ListBuckets in accounts whose bucket quota is
                # above 10,000 (botocore's ListBuckets documentation); MaxBuckets is the paginator's page size.
                pages = self.clients("s3").get_paginator("list_buckets").paginate(
                    BucketRegion=self.region, PaginationConfig={"PageSize": LIST_BUCKETS_PAGE})
                for bucket in (b for page in pages for b in page.get("Buckets", [])):
                    if (
                        bucket.get("BucketRegion", self.region) == self.region
                        and bucket["Name"] not in self._extra.buckets
                    ):
                        self._read_bucket(bucket["Name"])
                self._extra.all_buckets_read = True
            names = set(self._extra.buckets)
        else:
            names = {arn.split(":::", 1)[1].split("/", 1)[0] for arn in sources if arn.startswith("arn:aws")
                     and ":s3:::" in arn}
            for name in sorted(names - set(self._extra.buckets)):
                self._read_bucket(name)
        index: dict[str, list[Trigger]] = defaultdict(list)
        for name in sorted(names):
            for function_arn, trigger in self._extra.buckets.get(name, []):
                index[function_arn].append(trigger)
        return index

    def _read_bucket(self, name: str) -> None:
        try:
            config = self.clients("s3").get_bucket_notification_configuration(Bucket=name)
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchBucket", "404"):
                self._extra.unreadable_buckets.add(f"{name} ({error_code(exc) or 'error'})")
            self._extra.buckets[name] = []
            return
        found = []
        for item in config.get("LambdaFunctionConfigurations", []):
            rules = {str(r.get("Name", "")).lower(): str(r.get("Value", ""))
                     for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])}
            found.append((_unqualified(item.get("LambdaFunctionArn", "")), Trigger(
                "s3", f"arn:aws:s3:::{name}", tuple(item.get("Events", [])), rules.get("prefix", ""),
                rules.get("suffix", ""), item.get("Id", ""))))
        self._extra.buckets[name] = found

    def _subscription_triggers(self, sources: set[str] | None) -> dict[str, list[Trigger]]:
        """Function ARN → its SNS subscriptions: ListSubscriptions once per run, or the named topics only."""
        sns = self.clients("sns")
        if sources is None:
            if self._extra.all_subscriptions is None:
                index: dict[str, list[Trigger]] = defaultdict(list)
                for page in sns.get_paginator("list_subscriptions").paginate():
                    for function_arn, trigger in _lambda_subscriptions(page.get("Subscriptions", [])):
                        index[function_arn].append(trigger)
                self._extra.all_subscriptions = index
            return self._extra.all_subscriptions
        index = defaultdict(list)
        for topic in sorted(t for t in sources if t.split(":")[3:4] == [self.region]):
            if topic not in self._extra.topics:
                try:
                    subs = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                            for s in page.get("Subscriptions", [])]
                except ClientError as exc:
                    if not is_not_found(exc):
                        raise
                    subs = []
                self._extra.topics[topic] = _lambda_subscriptions(subs)
            for function_arn, trigger in self._extra.topics[topic]:
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

