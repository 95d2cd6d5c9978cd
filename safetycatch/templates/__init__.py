"""Template readers for ``safetycatch check``: AWS SAM / CloudFormation templates and Terraform plans, read
into the same ``FunctionSnapshot`` objects the inventory builds from AWS. Dev / CI only: not deployed.

Example:
    >>> [fn.resource for fn in read(Path("tests/templates/cloudformation.json"))][:1]
    ['BadOrdersApi']
"""

from __future__ import annotations

import json
from pathlib import Path

from safetycatch.templates.model import TemplateError, TemplateFunction

__all__ = ["TemplateError", "TemplateFunction", "read"]

MAX_BYTES = 50 * 1024 * 1024


def read(path: Path) -> list[TemplateFunction]:
    """The functions ``path`` declares; ``TemplateError`` (one line with file and line) when it cannot be read."""
    from safetycatch.templates.cloudformation import read_cloudformation
    from safetycatch.templates.terraform import is_plan, read_plan

    if not path.is_file():
        raise TemplateError(str(path), None, "no such file" if not path.exists() else "not a file")
    if path.stat().st_size > MAX_BYTES:
        raise TemplateError(str(path), None, f"larger than {MAX_BYTES // 1024 // 1024} MiB")
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise TemplateError(str(path), None, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise TemplateError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise TemplateError(str(path), None, "JSON nested too deeply to read") from None
        if is_plan(document):
            return read_plan(path, document)
    return read_cloudformation(path)
