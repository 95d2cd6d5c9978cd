"""The organisation fan-out: member accounts, the scopes (account, region) of a sweep, the sweep worker.

Must not import: slack or the wiring (the runtime is handed in as a parameter, typed by a protocol).
"""

__all__ = ['accounts', 'fanout', 'scopes']
