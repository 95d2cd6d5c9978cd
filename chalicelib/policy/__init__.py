"""The operator's policies: settings.yaml and each check's config, modes, the mutelist.

Must not import: intake, inventory, store or anything that acts: policies are data the deciders are handed.
"""

__all__ = ['mutelist', 'settings']
