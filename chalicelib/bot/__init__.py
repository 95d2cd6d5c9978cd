"""The bot put together: the ``Runtime`` that wires clients, stores, policies and Slack, the event handlers
and the Slack routes app.py maps to.

Must not import: app.py or the CLI (safetycatch): this is the top of chalicelib.
"""

__all__ = ['handlers', 'runtime', 'slack_routes']
