"""A stand-in for a real endpoint's round trip: every AWS request waits before it is sent.

``install(0.025)`` makes every botocore session created afterwards (boto3's, an assumed role's, Cloud
Custodian's) register a ``before-send`` hook that sleeps 25 ms: the request is then sent as usual. It needs
botocore only, so the Cloud Custodian bench venv imports it too (bench/custodian_run.py).

Example:
    >>> import botocore.session
    >>> install(0.0)
    >>> botocore.session.Session().get_component("event_emitter") is not None
    True
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import botocore.session

_installed: dict[str, Any] = {}
_lock = threading.Lock()
sent = [0]  # requests sent by this process (every session), for requests-per-function figures


_log = os.environ.get("BENCH_REQUEST_LOG")  # a file that gets one byte per request (counts across processes)
_log_fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if _log else None


def _waiter(delay: float) -> Any:
    def wait_before_send(request: Any = None, **_: Any) -> None:
        with _lock:
            sent[0] += 1
        if _log_fd is not None:
            os.write(_log_fd, b".")
        if delay:
            time.sleep(delay)
        return None  # None: botocore goes on and sends the request

    return wait_before_send


def install(delay: float) -> None:
    """From now on every new botocore session waits ``delay`` seconds before each request it sends."""
    if "init" in _installed:
        _installed["delay"][0] = delay
        return
    original = botocore.session.Session.__init__
    current = [delay]

    def init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-send", lambda **kw: _waiter(current[0])(**kw))

    botocore.session.Session.__init__ = init
    _installed.update(init=init, delay=current)
