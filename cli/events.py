"""Read events for ``replay``: one EventBridge event, a JSON array of them, or a CloudTrail log file.

CloudTrail log files (``{"Records": [...]}``, optionally gzipped as S3 delivers them) hold bare records;
each is wrapped in the EventBridge envelope the deployed rule would deliver.

Example:
    >>> events = load_events("tests/events/lambda-UpdateFunctionConfiguration20150331v2.json")
    >>> events[0]["detail"]["eventName"]
    'UpdateFunctionConfiguration20150331v2'
"""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

MAX_BYTES = 256 * 1024 * 1024


class EventFileError(ValueError):
    pass


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    """Wrap a CloudTrail record as EventBridge delivers it ("AWS API Call via CloudTrail")."""
    source = str(record.get("eventSource", "")).split(".amazonaws.com")[0]
    return {
        "version": "0", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(record.get("eventID", uuid.uuid4())))),
        "detail-type": "AWS API Call via CloudTrail", "source": f"aws.{source}",
        "account": record.get("recipientAccountId") or (record.get("userIdentity") or {}).get("accountId", ""),
        "time": record.get("eventTime", ""), "region": record.get("awsRegion", ""), "resources": [],
        "detail": record,
    }


def load_events(path: str) -> list[Any]:
    """Parse FILE into a list of EventBridge events; ``EventFileError`` (one line) if it cannot."""
    file = Path(path)
    if not file.is_file():
        raise EventFileError(f"replay: {path}: no such file")
    if file.stat().st_size > MAX_BYTES:
        raise EventFileError(f"replay: {path}: larger than {MAX_BYTES >> 20} MiB")
    raw = file.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise EventFileError(f"replay: {path}: corrupt gzip ({exc})") from None
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise EventFileError(f"replay: {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise EventFileError(f"replay: {path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("Records"), list):
        return [envelope(r) if isinstance(r, dict) else r for r in data["Records"]]
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise EventFileError(f"replay: {path}: expected an event object, an array of events or a CloudTrail log file")
