"""Lambda-side facets beyond the configuration: event source mappings, runaway alarms, recursion config.

Part of :class:`chalicelib.inventory.Inventory` (a mixin: it shares the inventory's clients and caches)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import alarms
from chalicelib.aws import error_code, is_unsupported
from chalicelib.inventory.common import ReaderBase, _mapping, _unqualified
from chalicelib.model import EventSourceMapping, FunctionRef, FunctionSnapshot


class LambdaReader(ReaderBase):
    """Lambda facets beyond the configuration: mappings, runaway alarms, recursion config."""

    def _load_mappings(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        by_function = self.mapping_index() if bulk else self._read_mappings(snapshots[0].name)
        for snapshot in snapshots:
            snapshot.mappings = tuple(by_function.get(snapshot.arn, ()))
            snapshot.loaded.add("mappings")

    def mapping_index(self) -> dict[str, list[EventSourceMapping]]:
        """Every event source mapping in the region, by unqualified function ARN (read once per run)."""
        if self._mapping_index is None:
            self._mapping_index = self._read_mappings(None)
        return self._mapping_index

    def _read_mappings(self, function_name: str | None) -> dict[str, list[EventSourceMapping]]:
        paginator = self.clients("lambda").get_paginator("list_event_source_mappings")
        by_function: dict[str, list[EventSourceMapping]] = defaultdict(list)
        for page in paginator.paginate(**({"FunctionName": function_name} if function_name else {})):
            for item in page.get("EventSourceMappings", []):
                by_function[_unqualified(item.get("FunctionArn", ""))].append(_mapping(item))
        return by_function

    def _load_alarms(self, snapshots: list[FunctionSnapshot], bulk: bool) -> None:
        index = self.alarm_index() if bulk else self._read_alarms(AlarmNames=[alarms.alarm_name(snapshots[0].name)])
        for snapshot in snapshots:
            snapshot.alarm = index.get(snapshot.name)
            snapshot.loaded.add("alarms")

    def alarm_index(self) -> dict[str, dict[str, Any]]:
        """Every managed runaway alarm in the region (one DescribeAlarms by prefix), by function name."""
        if self._alarm_index is None:
            self._alarm_index = self._read_alarms(AlarmNamePrefix=alarms.PREFIX)
        return self._alarm_index

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
        """Lambda's recursive loop setting (``Allow`` / ``Terminate``), or ``("unavailable", why)``."""
        try:
            value = self.clients("lambda").get_function_recursion_config(FunctionName=ref.arn).get("RecursiveLoop")
        except ClientError as exc:
            why = "GetFunctionRecursionConfig is not available here" if is_unsupported(exc) else \
                f"GetFunctionRecursionConfig failed: {error_code(exc) or 'error'}"
            return "unavailable", why
        if value not in ("Allow", "Terminate"):
            return "unavailable", f"unexpected RecursiveLoop value {str(value)[:40]!r}"
        return str(value), ""

    def function_mappings(self, snapshot: FunctionSnapshot) -> tuple[EventSourceMapping, ...]:
        """The function's event source mappings, read fresh (never from the run's bulk index)."""
        snapshot.mappings = tuple(self._read_mappings(snapshot.name).get(snapshot.arn, ()))
        snapshot.loaded.add("mappings")
        return snapshot.mappings

    def _load_recursion(self, snapshot: FunctionSnapshot) -> None:
        if "recursion" in snapshot.loaded:
            return
        try:
            response = self.clients("lambda").get_function_recursion_config(FunctionName=snapshot.arn)
            snapshot.recursive_loop = response.get("RecursiveLoop")
        except ClientError as exc:
            if not is_unsupported(exc) and error_code(exc) != "AccessDeniedException":
                raise
            snapshot.unavailable["recursion"] = ("GetFunctionRecursionConfig is not available here"
                                                 if is_unsupported(exc) else "GetFunctionRecursionConfig was denied")
        snapshot.loaded.add("recursion")

