"""Loop paths (recursive-trigger, footgun 4): every chain of deliveries, up to ``MAX_TRIGGER_HOPS`` long, that
ends by invoking the function - ``bucket → topic → queue → function``, ``bucket → default bus → rule →
function``, ``stream → pipe → queue → function``... The check then asks whether the function can write to the
first resource of each.

Walked backwards from the function: what invokes it (event source mappings, S3 and SNS deliveries, rules,
pipes), then what delivers into each queue, topic, bus or stream found, and so on. A sweep answers from the
region's indexes, read once per run (:mod:`~chalicelib.inventory.triggers`, :mod:`~chalicelib.inventory.eventbridge`);
an event reads only what the resource policies name: the function's (GetPolicy), each queue's
(GetQueueAttributes) and topic's (GetTopicAttributes) - S3, SNS and EventBridge may deliver only where such a
policy lets them - falling back to the region's index for a kind whose policy names no source.

What cannot be read (a bucket, a queue policy, the pipes) is named in ``snapshot.unavailable["chains"]``.
A reader composed by :class:`chalicelib.inventory.Inventory` over the trigger, EventBridge and Lambda readers
it walks through; it keeps its own caches.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.aws import NO_SUCH_QUEUE, error_code, is_not_found, is_transient
from chalicelib.core.model import MAX_TRIGGER_HOPS, EventSourceMapping, FunctionRef, FunctionSnapshot, Trigger
from chalicelib.domain import event_patterns
from chalicelib.inventory.common import ReadContext, Reader
from chalicelib.inventory.eventbridge import EventBridgeReader
from chalicelib.inventory.lambda_reads import LambdaReader
from chalicelib.inventory.triggers import EVENTBRIDGE, TriggerReader, invoke_sources

Path = tuple[Trigger, ...]
ACTIVE_MAPPINGS = ("Enabled", "Enabling", "Creating", "Updating")
MAX_PATHS = 50  # per function: enough to name every loop of any real design, bounded in a pathological one


def walk(last_hops: list[Trigger], upstream: Callable[[Trigger], list[Trigger]],
         max_hops: int = MAX_TRIGGER_HOPS) -> list[Path]:
    """Every path of at most ``max_hops`` deliveries ending with one of ``last_hops`` (head first): each path
    extended by what delivers into its head's source, never through the same resource twice.

    Example:
        >>> q = "arn:aws:sqs:us-east-1:123456789012:q"
        >>> into_f = Trigger("sqs", q, target_arn="f")
        >>> into_q = Trigger("sns", "arn:aws:sns:us-east-1:123456789012:t", target_arn=q)
        >>> [len(p) for p in walk([into_f], lambda head: [into_q] if head.source_arn == q else [])]
        [1, 2]
    """
    paths: list[Path] = [(hop,) for hop in last_hops]
    frontier = list(paths)
    for _ in range(max_hops - 1):
        grown: list[Path] = []
        for path in frontier:
            seen = {hop.source_arn for hop in path}
            for hop in upstream(path[0]):
                linked = link(hop, path[0])
                if linked is not None and linked.source_arn not in seen and len(paths) + len(grown) < MAX_PATHS:
                    grown.append((linked, *path))
        paths.extend(grown)
        frontier = grown
    return paths


def link(hop: Trigger, head: Trigger) -> Trigger | None:
    """``hop`` as it feeds ``head``: a bucket's events on the default bus reach a rule only as far as the rule's
    pattern matches them (their event types and key prefix), else not at all."""
    if hop.kind == "s3" and hop.id == EVENTBRIDGE:
        if head.kind != "events":
            return None
        return event_patterns.s3_via_eventbridge(hop.source_arn.split(":::", 1)[-1], hop.target_arn, head.pattern)
    return hop


def mapping_hops(mappings: tuple[EventSourceMapping, ...], function_arn: str) -> list[Trigger]:
    """The function's enabled SQS / Kinesis / DynamoDB-stream mappings as the last hop of a path (a Kinesis
    consumer stands for its stream)."""
    return [Trigger(m.source_kind, m.source_arn.split("/consumer/", 1)[0], id=m.uuid,  # type: ignore[arg-type]
                    target_arn=function_arn)
            for m in mappings if m.source_kind in ("sqs", "kinesis", "dynamodb") and m.state in ACTIVE_MAPPINGS]


def node_kind(arn: str) -> str:
    """What a delivery's source is, for walking further upstream: ``function``, ``queue``, ``topic``, ``bus``,
    ``stream`` (Kinesis), or '' for what nothing delivers into (a bucket, a DynamoDB stream).

    Example:
        >>> node_kind("arn:aws:events:us-east-1:123456789012:event-bus/default"), node_kind("arn:aws:s3:::b")
        ('bus', '')
    """
    parts = arn.split(":")
    service = parts[2] if len(parts) > 5 else ""
    if service == "events" and parts[5].startswith("event-bus/"):
        return "bus"
    return {"lambda": "function", "sqs": "queue", "sns": "topic", "kinesis": "stream"}.get(service, "")


class ChainReader(Reader):
    """Loop paths of two or more deliveries, and rule / pipe triggers (recursive-trigger): it walks through what
    the S3 / SNS, EventBridge and Lambda readers read."""

    def __init__(self, ctx: ReadContext, triggers: TriggerReader, events: EventBridgeReader,
                 lambdas: LambdaReader) -> None:
        super().__init__(ctx)
        self.triggers, self.events, self.lambdas = triggers, events, lambdas
        self._policies: dict[str, dict[str, Any] | None] = {}  # queue / topic resource policies
        self.gaps: set[str] = set()

    def warm(self) -> None:
        """Read the region's deliveries (buckets, subscriptions, rules, pipes) once a run, for a sweep."""
        self.ctx.once("delivery_index", self._delivery_index)

    def load_chains(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        """The ``chains`` facet: each function's loop paths beyond its direct triggers and mappings."""
        into = self._indexed_into if bulk else self._targeted_into

        def upstream(head: Trigger) -> list[Trigger]:
            return into(head.source_arn, head) if node_kind(head.source_arn) else []

        missing = [s for s in snapshots if "mappings" not in s.loaded]
        if missing:  # the mappings facet (read in bulk in a sweep) is what the last hop needs
            self.lambdas.load_mappings(missing, bulk)
        for snapshot in snapshots:
            try:
                last = mapping_hops(snapshot.mappings, snapshot.arn) + into(snapshot.arn, None)
                paths = walk(last, upstream)
            except (ClientError, BotoCoreError) as exc:
                if self.ctx.transient_raises and is_transient(exc):
                    raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
                self.gaps.add(f"loop paths ({error_code(exc) or type(exc).__name__})")
                paths = []
            # direct S3 / SNS triggers and mappings are the triggers / mappings facets; keep the rest
            snapshot.chains = tuple(p for p in paths if len(p) > 1 or p[0].kind in ("events", "pipe"))
            gaps = sorted(self.gaps | self.events.gaps | {f"bucket {b}" for b in self.triggers.unreadable_buckets})
            if gaps:
                snapshot.unavailable["chains"] = "could not read " + ", ".join(gaps[:5])
            snapshot.loaded.add("chains")

    # -- an S3 notification change: which functions it now reaches ----------------------------------------------

    def functions_downstream(self, bucket: str, destinations: list[str]) -> list[FunctionRef]:
        """The functions a bucket's notifications reach through ``destinations`` (queue / topic ARNs, or
        ``default-bus`` for its EventBridge notifications), within ``MAX_TRIGGER_HOPS`` deliveries.

        Example:
            inventory.functions_downstream("uploads-b", ["arn:aws:sns:us-east-1:123456789012:fanout"])
            # -> [FunctionRef(name='worker', ...)]  (fanout → queue work → worker)
        """
        bus = f"arn:aws:events:{self.region}:{self.account}:event-bus/default"
        frontier = [bus if d == "default-bus" else d for d in destinations]
        found: list[FunctionRef] = []
        seen = set(frontier)
        for _ in range(MAX_TRIGGER_HOPS - 1):  # the bucket's own delivery is the first hop
            reached = [t for node in frontier for t in self._delivers_to(node, bucket)]
            for ref in (FunctionRef.parse(t, self.account, self.region) for t in reached if ":function:" in t):
                if ref is not None and ref not in found:
                    found.append(ref)
            frontier = [t for t in reached if ":function:" not in t and t not in seen]
            seen.update(frontier)
        return found

    def _delivers_to(self, node: str, bucket: str) -> list[str]:
        """Where a queue, topic or bus sends what it receives: mappings and pipes from a queue, a topic's
        subscriptions, the rules on the default bus that take this bucket's S3 events."""
        kind = node_kind(node)
        pipes = [p.target_arn for p in self.events.pipe_deliveries() if p.source_arn == node]
        if kind == "queue":
            pages = self.clients("lambda").get_paginator("list_event_source_mappings").paginate(EventSourceArn=node)
            return pipes + [str(m.get("FunctionArn", "")) for page in pages
                            for m in page.get("EventSourceMappings", []) if m.get("State") in ACTIVE_MAPPINGS]
        if kind == "topic":
            return pipes + [t.target_arn for t in self.triggers.topic_deliveries({node})]
        if kind == "bus":
            s3_event = event_patterns.s3_event(bucket)
            return [t.target_arn for t in self.events.rule_deliveries(None)
                    if t.source_arn == node and event_patterns.may_match(t.pattern, s3_event)]
        return pipes

    # -- a sweep: the region's deliveries, indexed by target once per run --------------------------------------

    def _indexed_into(self, node: str, head: Trigger | None) -> list[Trigger]:
        """What delivers into ``node`` (``head``: the hop it feeds, unused here: the index holds everything)."""
        return list(self.ctx.once("delivery_index", self._delivery_index).get(node, ()))

    def _delivery_index(self) -> dict[str, list[Trigger]]:
        """Every S3, SNS, EventBridge-rule and pipe delivery of the region by target (a sweep's reads, once)."""
        index: dict[str, list[Trigger]] = defaultdict(list)
        hops = self.triggers.bucket_deliveries(None) + list(self.triggers.topic_deliveries(None))
        for hop in hops + self.events.rule_deliveries(None) + self.events.pipe_deliveries():
            index[hop.target_arn].append(hop)
        return index

    # -- an event: only what the resource policies name ---------------------------------------------------------

    def _targeted_into(self, node: str, head: Trigger | None) -> list[Trigger]:
        """What delivers into ``node``, read through its resource policy (``head``: the hop it feeds)."""
        kind = node_kind(node)
        if kind == "function":
            policy = self.ctx.function_policy(node) or {}
        elif kind in ("queue", "topic"):
            policy = self._delivery_policy(node, "sqs" if kind == "queue" else "sns")
        else:  # a bus or a stream: no resource policy gates rules and pipes into them
            return [hop for hop in self._bus_or_stream_sources(head) if hop.target_arn == node]
        sources = invoke_sources(policy)
        hops = self.triggers.deliveries(node, {"s3": sources["s3"], "sns": sources["sns"]})
        hops += [t for t in self.events.rule_deliveries(sources["events"]) if t.target_arn == node]
        return hops + [t for t in self.events.pipe_deliveries() if t.target_arn == node]

    def _bus_or_stream_sources(self, head: Trigger | None) -> list[Trigger]:
        """Rules and pipes anywhere (no policy names them), and - for a rule on the default bus that may take S3
        events - the buckets its pattern names (every bucket when it names none)."""
        hops = self.events.rule_deliveries(None) + self.events.pipe_deliveries()
        if head is not None and head.kind == "events" and head.source_arn.endswith(":event-bus/default") \
                and event_patterns.may_match(head.pattern, {"source": "aws.s3"}):
            named = _bucket_names(head.pattern)
            hops = hops + self.triggers.bucket_deliveries({f"arn:aws:s3:::{b}" for b in named} if named else None)
        return hops

    def _delivery_policy(self, arn: str, service: str) -> dict[str, Any]:
        """A queue's or topic's resource policy (once per run); {} when it has none or cannot be read."""
        if arn not in self._policies:
            self._policies[arn] = self._read_delivery_policy(arn, service)
        return self._policies[arn] or {}

    def _read_delivery_policy(self, arn: str, service: str) -> dict[str, Any] | None:
        region, account, name = arn.split(":")[3], arn.split(":")[4], arn.split(":")[5]
        if region != self.region:
            self.gaps.add(f"{name} (in {region})")
            return None
        try:
            if service == "sqs":
                sqs = self.clients("sqs")
                url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
                text = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
            else:
                text = self.clients("sns").get_topic_attributes(TopicArn=arn).get("Attributes", {})
        except ClientError as exc:
            if self.ctx.transient_raises and is_transient(exc):
                raise  # inside one event: Lambda retries it (chalicelib/core/aws.py, the one rule)
            if not is_not_found(exc) and error_code(exc) not in NO_SUCH_QUEUE:
                self.gaps.add(f"the policy of {name} ({error_code(exc) or 'error'})")
            return None
        try:
            policy = json.loads(text.get("Policy") or "{}")
        except ValueError:
            return None
        return policy if isinstance(policy, dict) else None


def _bucket_names(pattern: str) -> list[str]:
    """The literal bucket names an S3 rule's pattern names (``detail.bucket.name``); [] when it names none."""
    parsed = event_patterns.parse(pattern) or {}
    detail = parsed.get("detail")
    names = ((detail.get("bucket") or {}).get("name") if isinstance(detail, dict) else None) or []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) and all(
        isinstance(n, str) for n in names) else []
