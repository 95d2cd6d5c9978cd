"""Building the bot: the build steps behind ``make package`` (``python -m safetycatch.build``), the IAM policies
derived from the code, the Powertools layer pin, the member-account template, dead-letter wiring, the bot's own
identities, and the zip slimming.

Must not import: the commands (safetycatch.*) or local/: a build runs without a sandbox or a terminal.
"""

__all__ = ["dead_letters", "iam", "identities", "layer", "member_template", "slim", "steps"]
