"""Writes: the gateway every AWS write goes through (dry-run, tags, permissions), the fixes and their
exact undo specs, and drift (has anyone changed what the bot set).

Must not import: decide, killswitch, people, slack or the wiring: an action is applied, not chosen, here.
"""

__all__ = ['drift', 'fixes', 'gateway']
