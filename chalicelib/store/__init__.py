"""The bot's memory: the state table (fix records with their prior values, claims, notes, the audit trail).

Must not import: anything above core: it stores what others decide, it decides nothing.
"""

__all__ = ['state']
