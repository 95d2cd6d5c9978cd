"""Read events for ``replay``: one EventBridge event, a JSON array of them, or a CloudTrail log file, from
files and directories (every ``.json`` / ``.json.gz`` below one, as CloudTrail's S3 layout nests them).

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


def event_files(paths: list[str]) -> list[Path]:
    """The files ``replay`` reads, in order: each FILE as given, each directory's ``.json`` / ``.json.gz`` files
    (recursively, sorted); ``EventFileError`` for a missing path or a directory with none."""
    files: list[Path] = []
    for path in paths:
        entry = Path(path)
        if entry.is_dir():
            found = sorted(p for p in entry.rglob("*") if p.is_file() and p.name.endswith((".json", ".json.gz")))
            if not found:
                raise EventFileError(f"replay: {path}: no .json or .json.gz files in this directory")
            files.extend(found)
        elif entry.is_file():
            files.append(entry)
        else:
            raise EventFileError(f"replay: {path}: no such file or directory")
    return files


def load_all(paths: list[str]) -> list[Any]:
    """Every event of every FILE / directory, in order (all are parsed before any is run).

    Example:
        >>> len(load_all(["tests/events/lambda-TagResource20170331v2.json", "tests/events"])) > 10
        True
    """
    return [event for file in event_files(paths) for event in load_events(str(file))]
