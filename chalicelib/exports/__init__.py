"""Findings out, for other tools: the one finding id, ASFF / OCSF / SARIF shapes, the Security Hub sink.

Must not import: decide or anything above it: exports format what they are handed.
"""

__all__ = ['export', 'securityhub']
