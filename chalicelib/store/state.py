"""The bot's memory: audit records, stored prior values of fixes, and pending approvals.

One DynamoDB table (``SAFETYCATCH_TABLE``; key ``pk``/``sk``, GSI ``gsi1`` on ``gsi1pk``/``gsi1sk``, TTL on
``expiration``) or, for a CLI run without a table, the same logic over an in-memory table.

=========  =========================  ========  ========================  ==========================
item       pk                         sk        gsi1pk                    gsi1sk
=========  =========================  ========  ========================  ==========================
approval   ``approval#<id>``          approval  ``approvals#<STATUS>``    ``<function>#<created>``
fix        ``fix#<id>``               fix       ``fixes#<function>``      ``<created>#<id>``
audit      ``audit#<function>``       ``<ts>``  ``audits#<YYYY-MM-DD>``   ``<ts>#<function>``
counter    ``changes#<account>``      ``<hour>``  —                       —
counter    ``changes-function#<fn>``  ``<hour>``  —                       —
counter    ``changes-policy#<a>#<p>`` ``<hour>``  —                       —
kill       ``kill#<function>``        kill      —                         —
kills      ``kills#<account>``        ``<hour>``  —                       —
=========  =========================  ========  ========================  ==========================

A ``kill`` item is the kill-switch's lock on one function (``killing`` → ``killed`` → ``restored``, or
``killing`` → ``released`` when the kill was held back or failed), claimed
by conditional writes so two evidence events for one loop make one kill; ``kills`` items count kills per
account for the hourly cap.

Approval states move only by conditional writes: PENDING → APPROVED → APPLIED | FAILED, PENDING → DENIED |
EXPIRED; two approvers racing cannot both win.

Approval statuses are upper case and fix statuses lower case (``stored`` → ``applied`` | ``failed`` → ``undoing``
→ ``undone`` | ``undo-failed``; ``superseded``), and stay so: both are stored (an approval's status is part of
its index key ``approvals#<STATUS>``, so a renamed status would strand the items already in a table), and both
are printed by the CLI's JSON (``pending``, ``undo``, ``history``).

Example:
    >>> store = StateStore(MemoryTable())
    >>> approval = store.create_approval("arn:aws:lambda:us-east-1:123456789012:function:f", "p", {}, 24)
    >>> store.transition_approval(approval["id"], "PENDING", "APPROVED", decided_by="U1")
    True
    >>> store.transition_approval(approval["id"], "PENDING", "APPROVED", decided_by="U2")
    False
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.core.aws import Clients, error_code

AUDIT_TTL_DAYS = 90
DECIDED_TTL_DAYS = 30
APPROVAL_STATES = ("PENDING", "APPROVED", "APPLIED", "FAILED", "DENIED", "EXPIRED")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Table(Protocol):
    """The few table operations the store needs; ``DynamoTable`` and ``MemoryTable`` implement them."""

    def put(self, item: dict[str, Any]) -> None: ...
    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...
    def update_if(self, pk: str, sk: str, changes: dict[str, Any], expect: dict[str, Any]) -> bool: ...
    def query_index(self, gsi1pk: str, prefix: str = "") -> list[dict[str, Any]]: ...
    def query_pk(self, pk: str) -> list[dict[str, Any]]: ...
    def increment_below(self, pk: str, sk: str, limit: int, expiration: int) -> bool: ...
    def put_new(self, item: dict[str, Any], now: int | None = None) -> bool: ...
    def put_newer(self, item: dict[str, Any], field: str) -> bool: ...
    def move_amount(self, item: dict[str, Any], old: int, total_sk: str, ceiling: int | None) -> bool: ...


class MemoryTable:
    """In-memory stand-in with the same conditional semantics (for runs without ``SAFETYCATCH_TABLE``)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, item: dict[str, Any]) -> None:
        with self._lock:
            self.items[(item["pk"], item["sk"])] = dict(item)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.items.get((pk, sk))
        return dict(item) if item else None

    def update_if(self, pk: str, sk: str, changes: dict[str, Any], expect: dict[str, Any]) -> bool:
        with self._lock:
            item = self.items.get((pk, sk))
            if item is None or any(item.get(k) != v for k, v in expect.items()):
                return False
            item.update(changes)
            return True

    def query_index(self, gsi1pk: str, prefix: str = "") -> list[dict[str, Any]]:
        found = [dict(i) for i in self.items.values()
                 if i.get("gsi1pk") == gsi1pk and str(i.get("gsi1sk", "")).startswith(prefix)]
        return sorted(found, key=lambda i: i["gsi1sk"], reverse=True)

    def query_pk(self, pk: str) -> list[dict[str, Any]]:
        return sorted((dict(i) for (p, _), i in self.items.items() if p == pk), key=lambda i: i["sk"])

    def increment_below(self, pk: str, sk: str, limit: int, expiration: int) -> bool:
        with self._lock:
            item = self.items.setdefault((pk, sk), {"pk": pk, "sk": sk, "count": 0, "expiration": expiration})
            if item["count"] >= limit:
                return False
            item["count"] += 1
            return True

    def put_new(self, item: dict[str, Any], now: int | None = None) -> bool:
        """Write ``item`` unless it exists (with ``now``: unless it exists and has not expired)."""
        with self._lock:
            existing = self.items.get((item["pk"], item["sk"]))
            if existing is not None and (now is None or int(existing.get("expiration", now + 1)) >= now):
                return False
            self.items[(item["pk"], item["sk"])] = dict(item)
            return True

    def put_newer(self, item: dict[str, Any], field: str) -> bool:
        """Write ``item`` unless the stored one has a larger ``field`` (a later reading wins, whatever the order)."""
        with self._lock:
            existing = self.items.get((item["pk"], item["sk"]))
            if existing is not None and existing.get(field, 0) > item[field]:
                return False
            self.items[(item["pk"], item["sk"])] = dict(item)
            return True

    def move_amount(self, item: dict[str, Any], old: int, total_sk: str, ceiling: int | None) -> bool:
        """As :meth:`DynamoTable.move_amount`, under the table's lock."""
        with self._lock:
            key, total_key, delta = (item["pk"], item["sk"]), (item["pk"], total_sk), int(item["value"]) - old
            total = self.items.get(total_key)
            if int((self.items.get(key) or {}).get("value", 0)) != old or total is None or \
                    (delta > 0 and ceiling is not None and int(total["total"]) + delta > ceiling):
                return False
            total["total"] = int(total["total"]) + delta
            self.items[key] = dict(item)
            return True


class DynamoTable:
    """The state table in DynamoDB, through the low-level client (no float/Decimal surprises)."""

    def __init__(self, clients: Clients, name: str) -> None:
        self.client, self.name = clients("dynamodb"), name
        self._ser, self._de = TypeSerializer(), TypeDeserializer()

    def _dump(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in item.items() if v is not None}

    def _load(self, raw: dict[str, Any]) -> dict[str, Any]:
        item = {k: self._de.deserialize(v) for k, v in raw.items()}
        return {k: int(v) if hasattr(v, "as_integer_ratio") and v == int(v) else v for k, v in item.items()}

    def put(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.name, Item=self._dump(item))

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        raw = self.client.get_item(TableName=self.name, Key=self._dump({"pk": pk, "sk": sk}), ConsistentRead=True)
        return self._load(raw["Item"]) if "Item" in raw else None

    def update_if(self, pk: str, sk: str, changes: dict[str, Any], expect: dict[str, Any]) -> bool:
        names = {f"#c{i}": k for i, k in enumerate(changes)} | {f"#e{i}": k for i, k in enumerate(expect)}
        values = {f":c{i}": self._ser.serialize(v) for i, v in enumerate(changes.values())}
        values |= {f":e{i}": self._ser.serialize(v) for i, v in enumerate(expect.values())}
        condition = " AND ".join(["attribute_exists(pk)", *(f"#e{i} = :e{i}" for i in range(len(expect)))])
        try:
            self.client.update_item(
                TableName=self.name, Key=self._dump({"pk": pk, "sk": sk}),
                UpdateExpression="SET " + ", ".join(f"#c{i} = :c{i}" for i in range(len(changes))),
                ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(TableName=self.name, **kwargs):
            items.extend(self._load(i) for i in page.get("Items", []))
        return items

    def query_index(self, gsi1pk: str, prefix: str = "") -> list[dict[str, Any]]:
        condition, values = "gsi1pk = :p", {":p": {"S": gsi1pk}}
        if prefix:
            condition += " AND begins_with(gsi1sk, :s)"
            values[":s"] = {"S": prefix}
        return self._query(IndexName="gsi1", KeyConditionExpression=condition, ExpressionAttributeValues=values,
                           ScanIndexForward=False)

    def query_pk(self, pk: str) -> list[dict[str, Any]]:
        return self._query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}})

    def increment_below(self, pk: str, sk: str, limit: int, expiration: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.name, Key=self._dump({"pk": pk, "sk": sk}),
                UpdateExpression="ADD #c :one SET expiration = :exp",
                ConditionExpression="attribute_not_exists(#c) OR #c < :limit",
                ExpressionAttributeNames={"#c": "count"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)},
                                           ":exp": {"N": str(expiration)}})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_new(self, item: dict[str, Any], now: int | None = None) -> bool:
        """Conditional put: only if absent (with ``now``: or expired)."""
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if now is not None:
            condition = {"ConditionExpression": "attribute_not_exists(pk) OR #x < :now",
                         "ExpressionAttributeNames": {"#x": "expiration"},
                         "ExpressionAttributeValues": {":now": {"N": str(int(now))}}}
        try:
            self.client.put_item(TableName=self.name, Item=self._dump(item), **condition)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_newer(self, item: dict[str, Any], field: str) -> bool:
        """Conditional put: only if absent or its stored ``field`` is not larger (concurrent writers: the later
        reading wins)."""
        try:
            self.client.put_item(TableName=self.name, Item=self._dump(item),
                                 ConditionExpression="attribute_not_exists(pk) OR #f <= :v",
                                 ExpressionAttributeNames={"#f": field},
                                 ExpressionAttributeValues={":v": self._ser.serialize(item[field])})
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


    def move_amount(self, item: dict[str, Any], old: int, total_sk: str, ceiling: int | None) -> bool:
        """One transaction: ``item`` (its ``value`` was ``old``: 0 when absent) is written and the difference is
        added to the ``total`` of item (``item["pk"]``, ``total_sk``), which must exist; a rise that would take
        the total past ``ceiling`` (``None``: no ceiling) or a value no longer ``old`` writes nothing (False).

        Example:
            table.move_amount({"pk": "ledger", "sk": "fn", "value": 99}, 0, "#total", 300)  # -> True
        """
        delta, values = int(item["value"]) - old, {":old": {"N": str(old)}}
        total_update: dict[str, Any] = {
            "TableName": self.name, "Key": self._dump({"pk": item["pk"], "sk": total_sk}),
            "UpdateExpression": "ADD #t :d", "ConditionExpression": "attribute_exists(#t)",
            "ExpressionAttributeNames": {"#t": "total"}, "ExpressionAttributeValues": {":d": {"N": str(delta)}}}
        if delta > 0 and ceiling is not None:
            total_update["ConditionExpression"] = "#t <= :room"
            total_update["ExpressionAttributeValues"][":room"] = {"N": str(ceiling - delta)}
        put = {"TableName": self.name, "Item": self._dump(item), "ExpressionAttributeNames": {"#v": "value"},
               "ConditionExpression": "#v = :old" if old else "attribute_not_exists(#v) OR #v = :old",
               "ExpressionAttributeValues": values}
        try:
            self.client.transact_write_items(TransactItems=[{"Update": total_update}, {"Put": put}])
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                return False
            raise
        return True


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments for the state table (used by ``safetycatch init``, tests and the template)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": "gsi1",
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


class StateStore:
    """Audit, prior values and approvals over a :class:`Table`."""

    def __init__(self, table: Table, clock: Any = time.time) -> None:
        self.table, self.clock = table, clock

    @property
    def durable(self) -> bool:
        """False for the in-memory table: what is stored dies with the run."""
        return not isinstance(self.table, MemoryTable)

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, function_arn: str, record: dict[str, Any]) -> None:
        """Append one audit record for a decision about ``function_arn`` (indexed by day for ``history``)."""
        stamp = now_iso()
        self.table.put({"pk": f"audit#{function_arn}", "sk": f"{stamp}#{uuid.uuid4().hex[:8]}",
                        "kind": "audit", "at": stamp, "function": function_arn,
                        "gsi1pk": f"audits#{stamp[:10]}", "gsi1sk": f"{stamp}#{function_arn}",
                        "expiration": int(self.clock()) + AUDIT_TTL_DAYS * 86400,
                        **{k: v for k, v in record.items() if isinstance(v, (str, int, bool))}})

    def audit_trail(self, function_arn: str) -> list[dict[str, Any]]:
        return self.table.query_pk(f"audit#{function_arn}")

    def history(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
        """Audit records of every function from ``since`` on, newest first: one index query per day.

        Example:
            >>> store = StateStore(MemoryTable())
            >>> store.audit("arn:aws:lambda:us-east-1:123456789012:function:f", {"policy": "p", "outcome": "fixed"})
            >>> [r["outcome"] for r in store.history(datetime.now(timezone.utc) - timedelta(hours=1))]
            ['fixed']
        """
        until = until or datetime.now(timezone.utc)
        start, day = since.astimezone(timezone.utc).isoformat(timespec="milliseconds"), until.date()
        records: list[dict[str, Any]] = []
        while day >= since.astimezone(timezone.utc).date():
            records.extend(_decode(i) for i in self.table.query_index(f"audits#{day.isoformat()}")
                           if str(i.get("at", "")) >= start)
            day -= timedelta(days=1)
        return records

    # -- blast radius ----------------------------------------------------------------------------

    def take_change_slot(self, account: str, limit: int, kind: str = "changes") -> bool:
        """Count one change against ``limit`` per account per clock hour; False once the hour is used up.

        Atomic (a conditional ADD), so concurrent invocations cannot overshoot the cap.
        """
        hour = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m-%dT%H")
        return self.table.increment_below(f"{kind}#{account}", hour, limit, int(self.clock()) + 7200)

    # -- fixes (prior values) --------------------------------------------------------------------

    def store_fix(self, function_arn: str, policy: str, spec: dict[str, Any], **attrs: Any) -> str:
        """Store a fix and the prior value it replaces *before* it is applied; returns the fix id. ``attrs``
        (strings) are kept with it, e.g. ``trigger``: who made the change the fix answers."""
        fix_id = uuid.uuid4().hex
        stamp = datetime.fromtimestamp(self.clock(), timezone.utc).isoformat(timespec="milliseconds")
        self.table.put({"pk": f"fix#{fix_id}", "sk": "fix", "kind": "fix", "id": fix_id,
                        "function": function_arn, "policy": policy, "spec": json.dumps(spec),
                        "status": "stored", "created_at": stamp,
                        "gsi1pk": f"fixes#{function_arn}", "gsi1sk": f"{stamp}#{fix_id}",
                        **{k: v for k, v in attrs.items() if isinstance(v, str) and v}})
        return fix_id

    def mark_fix(self, fix_id: str, status: str, expect: str, **attrs: Any) -> bool:
        return self.table.update_if(f"fix#{fix_id}", "fix", {"status": status, **attrs}, {"status": expect})

    def get_fix(self, fix_id: str) -> dict[str, Any] | None:
        item = self.table.get(f"fix#{fix_id}", "fix")
        return _decode(item) if item else None

    def fixes_for(self, function_arn: str) -> list[dict[str, Any]]:
        """Fixes of one function, newest first."""
        return [_decode(i) for i in self.table.query_index(f"fixes#{function_arn}")]

    # -- approvals -------------------------------------------------------------------------------

    def create_approval(self, function_arn: str, policy: str, spec: dict[str, Any], ttl_hours: float,
                        **attrs: Any) -> dict[str, Any]:
        """Record a PENDING approval for a proposed fix; returns the item (``id`` is opaque)."""
        approval_id, stamp = uuid.uuid4().hex, now_iso()
        expires_at = int(self.clock() + ttl_hours * 3600)
        item = {"pk": f"approval#{approval_id}", "sk": "approval", "kind": "approval", "id": approval_id,
                "function": function_arn, "policy": policy, "spec": json.dumps(spec), "status": "PENDING",
                "created_at": stamp, "expires_at": expires_at,
                "expiration": expires_at + DECIDED_TTL_DAYS * 86400,
                "gsi1pk": "approvals#PENDING", "gsi1sk": f"{function_arn}#{stamp}",
                **{k: v for k, v in attrs.items() if isinstance(v, (str, int))}}
        self.table.put(item)
        return _decode(item)

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        item = self.table.get(f"approval#{approval_id}", "approval")
        return _decode(item) if item else None

    def transition_approval(self, approval_id: str, expect: str, status: str, **attrs: Any) -> bool:
        """Move an approval ``expect`` → ``status`` atomically; False if someone else moved it first."""
        if status not in APPROVAL_STATES:
            raise ValueError(f"unknown approval state {status!r}")
        changes = {"status": status, "gsi1pk": f"approvals#{status}", "updated_at": now_iso(), **attrs}
        return self.table.update_if(f"approval#{approval_id}", "approval", changes, {"status": expect})

    def approvals(self, status: str = "PENDING", function_arn: str = "") -> list[dict[str, Any]]:
        """Approvals in ``status`` (optionally for one function), newest first."""
        prefix = f"{function_arn}#" if function_arn else ""  # exact: orders must not match orders-api
        return [_decode(i) for i in self.table.query_index(f"approvals#{status}", prefix)]

    def link_message(self, kind: str, item_id: str, message_id: str, channel: str, ts: str) -> bool:
        """Remember on an approval / fix (``kind``) which Slack message shows it (the "posted" mark)."""
        return self.table.update_if(f"{kind}#{item_id}", kind, {"message_id": message_id, "channel": channel,
                                                                "ts": ts}, {})

    # -- Slack messages and one-time claims ------------------------------------------------------

    def create_message(self, function_arn: str, items: list[dict[str, Any]], **attrs: Any) -> str:
        """Record what one Slack message shows (``items``: approvals, fixes, notes); returns its id.

        The message is a view over the state: the worker re-renders it from here after every decision.
        """
        message_id = uuid.uuid4().hex
        self.table.put({"pk": f"message#{message_id}", "sk": "message", "kind": "message", "id": message_id,
                        "function": function_arn, "items": json.dumps(items), "created_at": now_iso(),
                        "expiration": int(self.clock()) + AUDIT_TTL_DAYS * 86400,
                        **{k: v for k, v in attrs.items() if isinstance(v, (str, int))}})
        return message_id

    def get_message(self, message_id: str) -> dict[str, Any] | None:
        item = self.table.get(f"message#{message_id}", "message")
        if not item:
            return None
        out = _decode(item)
        out["items"] = json.loads(out.get("items") or "[]")
        return out

    def posted_message(self, message_id: str, channel: str, ts: str) -> bool:
        return self.table.update_if(f"message#{message_id}", "message", {"channel": channel, "ts": ts}, {})

    def claim(self, key: str, ttl_seconds: int) -> bool:
        """True the first time ``key`` is claimed within ``ttl_seconds`` (replay and repeat protection).

        Example:
            >>> store = StateStore(MemoryTable())
            >>> store.claim("nonce#abc", 600), store.claim("nonce#abc", 600)
            (True, False)
        """
        now = int(self.clock())
        return self.table.put_new({"pk": f"claim#{key}", "sk": "claim", "kind": "claim", "at": now_iso(),
                                   "expiration": now + int(ttl_seconds)}, now)

    def release(self, key: str) -> None:
        """Give a claim back (what it guarded did not happen after all): the next ``claim`` of ``key`` wins.

        Example:
            >>> store = StateStore(MemoryTable())
            >>> store.claim("note#abc", 600), store.release("note#abc"), store.claim("note#abc", 600)
            (True, None, True)
        """
        self.table.put({"pk": f"claim#{key}", "sk": "claim", "kind": "claim", "at": now_iso(), "expiration": 0})

    # -- Slack tasks: what the verified route hands the worker ------------------------------------

    def put_task(self, task: dict[str, Any], ttl_seconds: int) -> str:
        """Store a task the Slack route verified and authorised; returns its id (all the worker is handed).

        Example:
            >>> store = StateStore(MemoryTable())
            >>> task_id = store.put_task({"kind": "command", "user": "U1"}, 900)
            >>> store.take_task(task_id), store.take_task(task_id)
            ({'kind': 'command', 'user': 'U1'}, None)
        """
        task_id = uuid.uuid4().hex
        self.table.put({"pk": f"slack-task#{task_id}", "sk": "task", "kind": "slack-task", "status": "new",
                        "task": json.dumps(task), "expiration": int(self.clock()) + int(ttl_seconds)})
        return task_id

    def take_task(self, task_id: str) -> dict[str, Any] | None:
        """The stored task ``task_id``, once (a conditional write takes it); None when no route stored it, it was
        taken already, or it expired."""
        item = self.table.get(f"slack-task#{task_id}", "task")
        if item is None or int(item.get("expiration", 0)) < int(self.clock()):
            return None
        if not self.table.update_if(f"slack-task#{task_id}", "task", {"status": "taken"}, {"status": "new"}):
            return None
        task = json.loads(str(item["task"]))
        return task if isinstance(task, dict) else None

    def expire_due(self) -> int:
        """Mark PENDING approvals past their expiry EXPIRED; returns how many."""
        now = self.clock()
        return sum(self.transition_approval(a["id"], "PENDING", "EXPIRED")
                   for a in self.approvals("PENDING") if a["expires_at"] <= now)


    # -- kill-switch -----------------------------------------------------------------------------

    def kill_lock(self, function_arn: str) -> dict[str, Any] | None:
        """The kill-switch's lock item for one function (None: never killed)."""
        return self.table.get(f"kill#{function_arn}", "kill")

    def claim_kill(self, function_arn: str, seen: dict[str, Any] | None) -> str | None:
        """Take the function's kill lock, as ``seen`` just before; returns the claim token, or None when another
        kill got there first. ``seen`` None creates the lock; otherwise it is taken over only if unchanged."""
        token = uuid.uuid4().hex
        item = {"status": "killing", "token": token, "fix_id": "", "since": int(self.clock())}
        if seen is None:
            ok = self.table.put_new({"pk": f"kill#{function_arn}", "sk": "kill", "kind": "kill",
                                     "function": function_arn, **item})
        else:
            ok = self.table.update_if(f"kill#{function_arn}", "kill", item,
                                      {"status": seen["status"], "token": seen["token"]})
        return token if ok else None

    def set_kill(self, function_arn: str, token: str, status: str, fix_id: str = "") -> bool:
        """Move the lock held with ``token`` to ``status`` (``killed`` with its fix id, ``restored``, ``released``)."""
        changes: dict[str, Any] = {"status": status, "since": int(self.clock())}
        if fix_id:
            changes["fix_id"] = fix_id
        return self.table.update_if(f"kill#{function_arn}", "kill", changes, {"token": token})



INVOKERS_TTL_SECONDS = 24 * 3600  # four 6-hourly sweeps: an entry no sweep or event refreshes expires (and is ignored)


class InvokerIndex:
    """The APIs that invoke a function through an invocation role (the integration's credentials), which the
    function's resource policy does not show: written by every full read of a region's APIs (the sweep) and by each
    read of one API on the event path, read on a function's own event so that only its APIs' routes are read.

    One item per (function, API), so no item grows with the estate (DynamoDB's 400 KB) and writers of different
    pairs never meet; writers of one pair are ordered by ``read_at`` (when the API was read, in ms): a conditional
    put keeps the later reading, a tombstone (``live`` False) included. Entries expire ``INVOKERS_TTL_SECONDS`` after
    the reading (TTL on ``expiration``; readers skip expired ones before DynamoDB deletes them). The index is a
    hint of what to read, never evidence: the routes are always re-read before any decision. ``reads``: the table
    read from when it differs from the one written (dry-run reads the durable index and writes nowhere durable).

    Example:
        >>> index = InvokerIndex(MemoryTable(), clock=lambda: 1000.0)
        >>> fn = "arn:aws:lambda:us-east-1:123456789012:function:orders"
        >>> index.record(fn, "rest", "a1b2c3d4e5", read_at=1000.0)
        True
        >>> index.apis_for(fn)
        [('rest', 'a1b2c3d4e5')]
        >>> index.forget(fn, "rest", "a1b2c3d4e5", read_at=999.0), index.apis_for(fn)  # an older reading loses
        (False, [('rest', 'a1b2c3d4e5')])
    """

    def __init__(self, table: Table, clock: Any = time.time, reads: Table | None = None) -> None:
        self.table, self.clock, self.reads = table, clock, reads or table

    def apis_for(self, function_arn: str) -> list[tuple[str, str]]:
        """``(kind, api id)`` of every live entry of the function (one Query)."""
        now = int(self.clock())
        return sorted((str(i["api_kind"]), str(i["api"])) for i in self.reads.query_pk(f"invokers#{function_arn}")
                      if i.get("live") and int(i.get("expiration", 0)) > now)

    def functions_of(self, account: str, region: str, api_id: str) -> list[tuple[str, str]]:
        """``(function ARN, kind)`` of every live entry naming the API (one index Query)."""
        now = int(self.clock())
        return sorted((str(i["function"]), str(i["api_kind"]))
                      for i in self.reads.query_index(f"invokers-api#{account}#{region}#{api_id}")
                      if i.get("live") and int(i.get("expiration", 0)) > now)

    def record(self, function_arn: str, kind: str, api_id: str, read_at: float) -> bool:
        """The API, read at ``read_at``, invokes the function through a role; False when a later reading won."""
        return self._put(function_arn, kind, api_id, read_at, live=True)

    def forget(self, function_arn: str, kind: str, api_id: str, read_at: float) -> bool:
        """The API, read at ``read_at``, no longer invokes the function through a role (or no longer exists)."""
        return self._put(function_arn, kind, api_id, read_at, live=False)

    def _put(self, function_arn: str, kind: str, api_id: str, read_at: float, live: bool) -> bool:
        region, account = (function_arn.split(":") + ["", "", "", "", ""])[3:5]
        return self.table.put_newer({
            "pk": f"invokers#{function_arn}", "sk": f"{kind}#{api_id}", "kind": "invoker", "function": function_arn,
            "api": api_id, "api_kind": kind, "live": live, "read_at": int(read_at * 1000),
            "seen": iso_at(read_at), "expiration": int(read_at) + INVOKERS_TTL_SECONDS,
            "gsi1pk": f"invokers-api#{account}#{region}#{api_id}", "gsi1sk": function_arn}, "read_at")

    def built(self, account: str, region: str) -> bool:
        """Whether a full read of the scope's APIs wrote the index within the TTL (else it cannot be relied on)."""
        item = self.reads.get("invokers-built", f"{account}#{region}")
        return item is not None and int(item.get("expiration", 0)) > int(self.clock())

    def mark_built(self, account: str, region: str, read_at: float) -> None:
        """A full read of the scope's APIs, begun at ``read_at``, wrote every entry it found."""
        self.table.put_newer({"pk": "invokers-built", "sk": f"{account}#{region}", "kind": "invokers-built",
                              "read_at": int(read_at * 1000), "seen": iso_at(read_at),
                              "expiration": int(read_at) + INVOKERS_TTL_SECONDS}, "read_at")


def iso_at(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC (what ``seen`` attributes show a person)."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")

def _decode(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk")}
    if isinstance(out.get("spec"), str):
        out["spec"] = json.loads(out["spec"])
    return out


def open_store(clients: Clients, table_name: str | None) -> StateStore:
    """The DynamoDB store when ``table_name`` is set, else an in-memory one for this run."""
    return StateStore(DynamoTable(clients, table_name) if table_name else MemoryTable())
