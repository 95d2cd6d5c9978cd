"""Decisions: the engine (evaluate, fix, ask or notify, within the blast-radius limits) and the limits.

Must not import: killswitch, people, org, slack or the wiring: the engine is handed its notifier, sink and stores.
"""

__all__ = ['engine', 'limits']
