"""Events in: CloudTrail changes parsed into ``Change`` values (or a reason to skip), duplicate suppression,
and the heartbeat that calls a silent pipe an incident.

Must not import: the engine, the fixes, the kill-switch, Slack or the wiring: it says what changed, never what to do.
"""

__all__ = ['dedupe', 'events', 'heartbeat']
