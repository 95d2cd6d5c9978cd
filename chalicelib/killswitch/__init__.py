"""The kill-switch: evidence AWS itself gives (managed alarms, Health), the sentinel alarms, the kill and
its exact restore.

Must not import: people, org, slack or the wiring: the kill is asked for by evidence, never by Slack.
"""

__all__ = ['evidence', 'kill', 'sentinel']
