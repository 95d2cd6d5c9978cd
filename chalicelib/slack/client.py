"""Slack plumbing: credentials from Secrets Manager, a retrying Web API client, request signatures, approvers.

=============================  ================================================================================
``SAFETYCATCH_SLACK_SECRET``   Secrets Manager id of ``{"bot_token": "xoxb-...", "signing_secret": "..."}``
                               (read through Powertools Parameters, cached ``SECRET_MAX_AGE`` seconds)
``SAFETYCATCH_SLACK_CHANNEL``  channel id (or name) the bot posts to
``SAFETYCATCH_SLACK_API_URL``  Slack's host root, default ``https://slack.com``. The Web API is under
                               ``<url>/api/`` (that is ``WebClient.base_url``); a URL that already ends in
                               ``/api`` or ``/api/`` is used as is. ``http://127.0.0.1:8765`` → the local Slack.
=============================  ================================================================================

The Slack app: bot token scopes ``chat:write``, ``usergroups:read`` and ``commands``; Interactivity Request URL
``https://<api>/<stage>/slack/actions``; slash command ``/safetycatch`` → ``https://<api>/<stage>/slack/commands``.

No secret is ever in the environment: only the secret's *name* is. 429 (honouring ``Retry-After``), 500/503
and connection errors are retried by slack-sdk's own retry handlers; what still fails raises
:class:`SlackUnavailable` and the caller keeps the approval PENDING and unposted (re-sent next time).

Example:
    slack = Slack.from_env(session)
    ts = slack.post("C0123", "safetycatch: orders-api", blocks)
    slack.verify(body, headers)
    # -> True
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from chalicelib.core.log import logger

DEFAULT_API_URL = "https://slack.com"
SECRET_MAX_AGE = 300            # seconds the credentials stay cached in a warm container
GROUP_CACHE_SECONDS = 60        # user-group membership cache (approver checks stay fast)
SIGNATURE_WINDOW_SECONDS = 300  # slack-sdk's SignatureVerifier window: 5 minutes either way
HTTP_TIMEOUT_SECONDS = 5
SLACK_RESPONSE_HOSTS = ("hooks.slack.com",)


class SlackUnavailable(RuntimeError):
    """Slack (or the secret) could not be reached after the retries; one line, safe to show."""


def escape(value: Any) -> str:
    """``value`` as text Slack shows literally: ``&``, ``<`` and ``>`` escaped, so a name, a reason or a tag value
    can never become a link, a mention or a ``<!channel>`` ping in mrkdwn.

    Example:
        >>> escape("<!channel> <https://evil.example|Restore> & co")
        '&lt;!channel&gt; &lt;https://evil.example|Restore&gt; &amp; co'
    """
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def api_base_url(url: str | None) -> str:
    """``WebClient.base_url`` for ``SAFETYCATCH_SLACK_API_URL``.

    Example:
        >>> api_base_url("http://127.0.0.1:8765"), api_base_url("https://slack.com/api")
        ('http://127.0.0.1:8765/api/', 'https://slack.com/api/')
    """
    root = (url or DEFAULT_API_URL).strip().rstrip("/")
    return root + "/" if root.endswith("/api") else root + "/api/"


def retry_handlers() -> list[Any]:
    """slack-sdk's handlers: 429 (Retry-After), 500/503 and connection errors, two retries each."""
    return [RateLimitErrorRetryHandler(max_retry_count=2), ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2)]


@dataclass(frozen=True)
class Credentials:
    bot_token: str = field(repr=False)
    signing_secret: str = field(repr=False)


def load_credentials(secret_id: str, session: Any = None, max_age: int | None = None,
                     provider: Any = None) -> Credentials:
    """Read ``{"bot_token", "signing_secret"}`` from Secrets Manager through Powertools Parameters (cached).

    Example:
        load_credentials("safetycatch/slack").signing_secret != ""
        # -> True
    """
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    from chalicelib.core.aws import RETRY_CONFIG

    provider = provider or SecretsProvider(boto_config=RETRY_CONFIG, boto3_session=session)
    try:
        value = provider.get(secret_id, transform="json", max_age=SECRET_MAX_AGE if max_age is None else max_age)
    except (GetParameterError, TransformParameterError) as exc:
        raise SlackUnavailable(f"cannot read Slack credentials from secret {secret_id!r}: "
                               f"{str(exc).splitlines()[0][:160]}") from exc
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) and value.get(k)
                                              for k in ("bot_token", "signing_secret")):
        raise SlackUnavailable(f"secret {secret_id!r} must be JSON with non-empty bot_token and signing_secret")
    return Credentials(value["bot_token"], value["signing_secret"])


class Slack:
    """The bot's Slack: posts and updates messages, answers clickers, verifies requests, checks approvers.

    Credentials are read on first use (not at import or cold start), so a missing secret fails the Slack
    work only, never the event handler.
    """

    def __init__(self, secret_id: str, channel: str = "", api_url: str | None = None, session: Any = None,
                 clock: Any = time.time) -> None:
        self.secret_id, self.channel, self.api_url, self.session = secret_id, channel, api_url, session
        self.clock = clock
        self._provider: Any = None
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, session: Any = None) -> Slack | None:
        """The configured Slack, or None without ``SAFETYCATCH_SLACK_SECRET``."""
        secret = os.environ.get("SAFETYCATCH_SLACK_SECRET", "").strip()
        if not secret:
            return None
        return cls(secret, os.environ.get("SAFETYCATCH_SLACK_CHANNEL", "").strip(),
                   os.environ.get("SAFETYCATCH_SLACK_API_URL") or None, session)

    # -- credentials and client -------------------------------------------------------------------

    def credentials(self) -> Credentials:
        with self._lock:
            if self._provider is None:
                from aws_lambda_powertools.utilities.parameters import SecretsProvider

                from chalicelib.core.aws import RETRY_CONFIG

                self._provider = SecretsProvider(boto_config=RETRY_CONFIG, boto3_session=self.session)
        return load_credentials(self.secret_id, provider=self._provider)

    def client(self) -> WebClient:
        return WebClient(token=self.credentials().bot_token, base_url=api_base_url(self.api_url),
                         timeout=HTTP_TIMEOUT_SECONDS, retry_handlers=retry_handlers())

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client(), method)(**kwargs)
        except SlackApiError as exc:
            raise SlackUnavailable(f"Slack {method}: {exc.response.get('error', 'error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise SlackUnavailable(f"Slack {method}: {type(exc).__name__}: {str(exc)[:160]}") from exc

    # -- messages ---------------------------------------------------------------------------------

    def post(self, channel: str, text: str, blocks: Sequence[Block]) -> str:
        """chat.postMessage; returns the message ``ts``."""
        response = self._call("chat_postMessage", channel=channel, text=text, blocks=list(blocks))
        return str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: Sequence[Block]) -> None:
        """chat.update of a message the bot posted."""
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=list(blocks))

    def tell(self, user: str, text: str, channel: str = "", response_url: str = "") -> None:
        """An ephemeral answer to one person: through ``response_url`` when Slack gave one, else
        chat.postEphemeral. Never raises (a lost "not authorised" note must not fail the request)."""
        try:
            if response_url and self.trusted_response_url(response_url):
                response = WebhookClient(response_url, timeout=HTTP_TIMEOUT_SECONDS,
                                         retry_handlers=retry_handlers()).send(
                    text=text, response_type="ephemeral", replace_original=False)
                if response.status_code == 200:
                    return
            if channel and user:
                self._call("chat_postEphemeral", channel=channel, user=user, text=text)
        except (SlackUnavailable, SlackClientError, OSError) as exc:
            logger.warning("slack ephemeral failed", extra={"user": user, "error": str(exc)[:200]})

    def trusted_response_url(self, url: str) -> bool:
        """Only Slack's own response hosts (or the configured local Slack) - never an arbitrary URL."""
        parsed, own = urlparse(url), urlparse(api_base_url(self.api_url))
        if parsed.scheme == "https" and parsed.hostname in SLACK_RESPONSE_HOSTS:
            return True
        return bool(self.api_url) and (parsed.scheme, parsed.netloc) == (own.scheme, own.netloc)

    # -- requests from Slack ----------------------------------------------------------------------

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """slack-sdk's SignatureVerifier over the raw body (v0:timestamp:body, 5-minute window)."""
        timestamp = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if not timestamp.isdigit() or not signature.startswith("v0="):
            return False
        verifier = SignatureVerifier(self.credentials().signing_secret, clock=_Clock(self.clock))
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)

    def is_approver(self, user: str, approvers: Sequence[str], groups: Sequence[str]) -> bool:
        """``user`` is listed in ``approvers`` or is a member of one of the ``groups`` (usergroups.users.list).

        Fails closed: a group Slack cannot list counts as no members.
        """
        if not user:
            return False
        if user in approvers:
            return True
        return any(user in self.group_members(group) for group in groups)

    def group_members(self, group: str) -> frozenset[str]:
        now = self.clock()
        cached = self._groups.get(group)
        if cached and now - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        try:
            users = frozenset(self._call("usergroups_users_list", usergroup=group).get("users") or ())
        except SlackUnavailable as exc:
            logger.warning("approver group unavailable", extra={"group": group, "error": str(exc)})
            return frozenset()
        self._groups[group] = (now, users)
        return users


class _Clock(Clock):
    """SignatureVerifier's clock protocol over an injectable ``time.time``."""

    def __init__(self, now: Any) -> None:
        self._now = now

    def now(self) -> float:
        return float(self._now())


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == name:
            return value if isinstance(value, str) else ""
    return ""
