"""``safetycatch serve``: the bot's HTTP routes (``POST /slack/actions``, ``POST /slack/commands``) on this
machine, over chalice's own local server and the same ``app`` object, with the worker inline.

It uses whatever ``AWS_ENDPOINT_URL`` / the boto3 chain and ``SAFETYCATCH_SLACK_*`` point at, so a Slack app's
Request URL (through a tunnel) or the demo's signed clicks reach exactly the deployed code path.

Example:
    with local_routes(port=0, policies="policies") as url:
        urllib.request.urlopen(url + "/slack/actions", data=body)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safetycatch.local.sandbox import free_port, patched_env


@contextlib.contextmanager
def local_routes(port: int = 0, policies: str | None = None, host: str = "127.0.0.1",
                 quiet: bool = False) -> Iterator[str]:
    """Serve the routes on ``host:port`` (0: a free port) in a background thread; yields the base URL.
    ``quiet`` drops the per-request access log lines (the demo)."""
    import functools

    from chalice.config import Config
    from chalice.local import CustomLocalChalice, create_local_server

    from chalicelib.bot import handlers, slack_routes
    from chalicelib.bot.runtime import Runtime

    port = port or free_port()
    env = {"SAFETYCATCH_WORKER": "inline", **({"SAFETYCATCH_POLICIES": os.path.abspath(policies)} if policies else {})}
    with patched_env(**env):
        handlers.reset_runtime(Runtime.from_env(policies))  # bad settings fail here, as one line
        app_module = chalice_app_module()
        config = Config.create(chalice_stage="dev", app_name="safetycatch")
        if type(app_module.app) is CustomLocalChalice:  # served before in this process (the demo, a test):
            app_module.app.__class__ = CustomLocalChalice.__bases__[1]  # unwrap, or chalice's re-wrap is a cycle
        server = create_local_server(app_module.app, config, host, port)
        if quiet:
            server.server.RequestHandlerClass = functools.partial(
                _quiet_handler(), app_object=app_module.app, config=config)
        thread = threading.Thread(target=server.server.serve_forever, name="safetycatch-serve", daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.shutdown()
            server.server.server_close()
            slack_routes.wait_inline()


def _quiet_handler() -> Any:
    from chalice.local import ChaliceRequestHandler

    class QuietHandler(ChaliceRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    return QuietHandler


def chalice_app_module() -> Any:
    """The project's ``app.py`` (the same object ``chalice local`` and the Lambda load)."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("app")


def serve(port: int, policies: str | None) -> int:
    """Serve until interrupted (Ctrl-C)."""
    with local_routes(port, policies) as url:
        slack = "Slack settings found" if os.environ.get("SAFETYCATCH_SLACK_SECRET") else \
            "SAFETYCATCH_SLACK_SECRET is not set: the routes answer 503"
        print(f"safetycatch serving POST {url}/slack/actions and {url}/slack/commands (worker inline; {slack})",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0
