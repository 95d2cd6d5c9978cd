"""What S3 and SNS deliver, and to what: bucket notifications (to functions, queues, topics and, with EventBridge
notifications on, the default event bus) and SNS subscriptions (to functions and queues).

The ``triggers`` facet is a function's direct S3 / SNS triggers. The same reads serve the loop paths of the
``chains`` facet (:mod:`chalicelib.inventory.chains`): :meth:`TriggerReader.deliveries` answers what S3 and SNS
deliver into a function, queue, topic or bus, reading only the buckets / topics named in ``sources`` (from the
target's resource policy) or, with None, every bucket and subscription of the region (once per run).

A reader composed by :class:`chalicelib.inventory.Inventory`; it keeps its own caches."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.core.aws import error_code, is_not_found, is_transient
from chalicelib.core.model import FunctionSnapshot, Trigger
from chalicelib.inventory.common import ReadContext, Reader, _unqualified

EVENTBRIDGE = "EventBridge"  # the id of a bucket's delivery to the default event bus
LIST_BUCKETS_PAGE = 1000  # MaxBuckets: 1 to 10,000


def default_bus(region: str, account: str) -> str:
    return f"arn:aws:events:{region}:{account}:event-bus/default"


class TriggerReader(Reader):
    """What S3 and SNS deliver, and to what."""

    def __init__(self, ctx: ReadContext) -> None:
        super().__init__(ctx)
        self._buckets: dict[str, list[Trigger]] = {}
        self.unreadable_buckets: set[str] = set()
        self._topics: dict[str, list[Trigger]] = {}

    def load_triggers(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``triggers`` facet: each function's S3 notifications and SNS subscriptions."""
        for snapshot in snapshots:
            sources = None if bulk else invoke_sources(self.ctx.function_policy(snapshot.arn) or {})
            snapshot.triggers = tuple(t for t in self.deliveries(snapshot.arn, sources) if t.kind in ("s3", "sns"))
            if self.unreadable_buckets:
                snapshot.unavailable["triggers"] = ("notifications unreadable for bucket(s) "
                                                    + ", ".join(sorted(self.unreadable_buckets)[:5]))
            snapshot.loaded.add("triggers")

    def deliveries(self, target: str, sources: dict[str, set[str] | None] | None) -> list[Trigger]:
        """What S3 and SNS deliver into ``target`` (a function, queue, topic or bus ARN). ``sources`` maps ``s3``
        / ``sns`` to the bucket / topic ARNs to read (None: all of that kind); ``sources`` None reads all."""
        sources = sources if sources is not None else {"s3": None, "sns": None}
        found = [t for t in self.bucket_deliveries(sources.get("s3", set())) if t.target_arn == target]
        return found + [t for t in self.topic_deliveries(sources.get("sns", set())) if t.target_arn == target]

    def bucket_deliveries(self, sources: set[str] | None) -> list[Trigger]:
        """Every delivery of the buckets named (bucket ARNs) or, with None, of every bucket of the region
        (ListBuckets, then one GetBucketNotificationConfiguration per bucket, in parallel, once per run)."""
        if sources is None:
            self.ctx.once("all_buckets", self._read_all_buckets)
            names = set(self._buckets)
        else:
            names = {arn.split(":::", 1)[1].split("/", 1)[0] for arn in sources if arn.startswith("arn:aws")
                     and ":s3:::" in arn}
            self.ctx.parallel("s3", self._read_bucket, sorted(names - set(self._buckets)))
        return [t for name in sorted(names) for t in self._buckets.get(name, [])]

    def warm(self) -> None:
        """Read every bucket's notifications and every SNS subscription of the region, once a run."""
        self.ctx.once("all_buckets", self._read_all_buckets)
        self.topic_deliveries(None)

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
                self.unreadable_buckets.add(f"{name} ({error_code(exc) or 'error'})")
            self._buckets[name] = []
            return
        found = []
        for key, target_key in (("LambdaFunctionConfigurations", "LambdaFunctionArn"),
                                ("QueueConfigurations", "QueueArn"), ("TopicConfigurations", "TopicArn")):
            for item in config.get(key, []):
                rules = {str(r.get("Name", "")).lower(): str(r.get("Value", ""))
                         for r in ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])}
                target = str(item.get(target_key, ""))
                found.append(Trigger("s3", f"arn:aws:s3:::{name}", tuple(item.get("Events", [])),
                                     rules.get("prefix", ""), rules.get("suffix", ""), item.get("Id", ""),
                                     target_arn=_unqualified(target) if key.startswith("Lambda") else target))
        if "EventBridgeConfiguration" in config:
            found.append(Trigger("s3", f"arn:aws:s3:::{name}", ("s3:*",), id=EVENTBRIDGE,
                                 target_arn=default_bus(self.region, self.account)))
        self._buckets[name] = found

    def topic_deliveries(self, sources: set[str] | None) -> list[Trigger]:
        """Every Lambda / SQS subscription of the topics named or, with None, of the region (ListSubscriptions
        once per run)."""
        if sources is None:
            return self.ctx.once("all_subscriptions", self._read_all_subscriptions)
        sns = self.clients("sns")
        found: list[Trigger] = []
        for topic in sorted(t for t in sources if t.split(":")[3:4] == [self.region]):
            if topic not in self._topics:
                try:
                    subs = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
                            for s in page.get("Subscriptions", [])]
                except ClientError as exc:
                    if not is_not_found(exc):
                        raise
                    subs = []
                self._topics[topic] = _subscriptions(subs)
            found.extend(self._topics[topic])
        return found

    def _read_all_subscriptions(self) -> list[Trigger]:
        return _subscriptions([s for page in self.clients("sns").get_paginator("list_subscriptions").paginate()
                               for s in page.get("Subscriptions", [])])


def invoke_sources(policy: dict[str, Any]) -> dict[str, set[str] | None]:
    """The sources a resource policy lets S3, SNS and EventBridge deliver from (their ``aws:SourceArn``), by
    kind: ``s3`` / ``sns`` / ``events``; None for a kind whose service is allowed without naming its source (then
    every source of that kind must be read).

    Example:
        >>> policy = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        ...     "Action": "lambda:InvokeFunction", "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::up"}}}]}
        >>> invoke_sources(policy)
        {'s3': {'arn:aws:s3:::up'}, 'sns': set(), 'events': set()}
    """
    return {kind: _service_sources(policy, f"{kind}.amazonaws.com") for kind in ("s3", "sns", "events")}


def _service_sources(policy: dict[str, Any], service: str) -> set[str] | None:
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


def _subscriptions(subscriptions: list[dict[str, Any]]) -> list[Trigger]:
    found = []
    for s in subscriptions:
        protocol, endpoint = s.get("Protocol"), str(s.get("Endpoint", ""))
        if protocol in ("lambda", "sqs"):
            found.append(Trigger("sns", s.get("TopicArn", ""), id=s.get("SubscriptionArn", ""),
                                 target_arn=_unqualified(endpoint) if protocol == "lambda" else endpoint))
    return found
