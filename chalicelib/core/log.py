"""The bot's one structured logger (Powertools Logger, JSON lines).

The service name differs from the Chalice app name on purpose: with the same name Chalice's own logger and
this one would both print every line. Logs go to stderr so the CLI's stdout stays clean JSON / tables.

Example:
    >>> from chalicelib.core.log import logger
    >>> logger.info("decision", extra={"policy": "apigw-timeout", "outcome": "fixed"})
"""

import sys

from aws_lambda_powertools import Logger

logger = Logger(service="safetycatch-bot", stream=sys.stderr)
