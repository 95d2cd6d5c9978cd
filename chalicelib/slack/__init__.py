"""Slack as presentation at the edge: the Web API client (slack-sdk) and the Block Kit messages.

Must not import: the wiring (bot): Slack never reaches the handlers; decisions are passed in.
"""

__all__ = ['client', 'messages']
