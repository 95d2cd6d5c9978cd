"""What people ask for: approvals (who may, which fix), the decisions behind each button, and undo.

Must not import: org, slack or the wiring: a Slack route or the CLI calls these, they never call back.
"""

__all__ = ['approvals', 'decisions', 'undo']
