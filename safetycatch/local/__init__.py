"""Everything local (dev-only, never in the Lambda package): the embedded AWS (a moto server), the local event path
and Slack, ``serve``, the demo, the deploy storm, and the builders of realistic events.

Must not import: the commands (safetycatch.*), except the shared ``render`` and the demo, which runs ``main`` as
an operator would.
"""

__all__ = ["cloudtrail", "demo", "evidence", "local_trail", "sandbox", "serve", "slack_demo", "slack_local",
           "slack_view", "storm"]
