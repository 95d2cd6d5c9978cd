"""safetycatch, the operator CLI (``safetycatch``, see safetycatch/main.py): the commands at this level, the template
readers in ``templates/``, packaging in ``build/``, the local sandbox and demo in ``local/``. The bot itself is
``chalicelib`` (the Lambda package); the CLI runs the same code.

A Chalice project of one's own has a ``chalicelib/`` too: with it on ``PYTHONPATH`` (before site-packages),
``import chalicelib`` would find that one. The folder that holds this package also holds the bot's chalicelib (a
checkout, or site-packages for an installed wheel), so it goes first on ``sys.path`` before anything imports it.
"""

import sys
from pathlib import Path

__all__ = ["build", "local", "templates"]

_HOME = str(Path(__file__).resolve().parent.parent)
if "chalicelib" not in sys.modules and sys.path[:1] != [_HOME]:
    sys.path.insert(0, _HOME)
