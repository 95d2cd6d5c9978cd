"""Shared ground every package stands on: the data model, the AWS client rules (retries, errors, pools), AWS's
published quotas and the pacer, the logger, and Powertools observability.

Must not import: any other chalicelib package: this is the bottom layer.
"""

__all__ = ['aws', 'log', 'model', 'observability', 'quotas']
