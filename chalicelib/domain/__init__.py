"""What the bot knows about AWS, as pure functions and constants: the managed runaway alarm's shape, loop edges
and the writes a policy allows, EventBridge pattern matching, IAM evaluation, Lambda prices, secret shapes.

Must not import: anything above core (no reads, no writes, no state): the checks and the readers build on it.
"""

__all__ = ['alarms', 'event_patterns', 'iam_eval', 'loops', 'pricing', 'secretscan']
