"""``safetycatch check --fix FILE...``: write the template change of each finding a template can fix, in place.

What is written (CloudFormation / SAM, YAML or JSON):

- apigw-timeout: ``Timeout`` under the integration timeout, on the function's own ``Properties``. A value the
  function takes from SAM ``Globals`` is not changed there (that would change every function): the function
  gets its own ``Timeout``, which overrides the Globals' for it alone.
- batch-partial-failure: ``ReportBatchItemFailures`` added to ``FunctionResponseTypes`` of the event (SAM) or
  of the ``AWS::Lambda::EventSourceMapping``.
- reserved-concurrency: ``ReservedConcurrentExecutions`` set to the value the policy proposes.
- recursive-trigger: ``RecursiveLoop: Terminate`` where the function states another value (``Allow``). When it
  states none, Lambda's default is already ``Terminate`` and nothing is written (the loop itself is a design
  change, which the finding describes).
- env-secrets (YAML only: JSON has no comments): a ``TODO`` comment on each flagged variable naming the
  ``{{resolve:secretsmanager:...}}`` reference to use. The secret's id cannot be known from the template, so
  the value is never replaced.

A value stated through an intrinsic (``!Ref``, ``!If``) is not overwritten. YAML is read with ruamel.yaml's
round-trip reader, which gives the line and column of every key and value; only the lines of the change are
rewritten (a value replaced in place, a new ``Key: value`` line at the mapping's indentation, a flow mapping or
list extended on its own line), so comments, key order, quoting, indentation and line ends are kept byte for
byte. A change with no such safe place (a multi-line flow mapping, a key sharing the line of a ``- `` item) is
not written. JSON is dumped again with its own indentation, only when that gives back the very same bytes for
the unchanged file; else it is not written. Terraform plans are never edited (the source is the ``.tf``). Only
the given file is written (in place: no temporary file beside it; a symbolic link is refused).

Example:
    >>> text = "Resources:\\n  F:\\n    Type: AWS::Lambda::Function\\n    Properties:\\n      Timeout: 30  # s\\n"
    >>> finding = {"policy": "apigw-timeout", "resource": "F", "file": "t.yaml",
    ...            "fix": {"path": "Resources.F.Properties.Timeout", "value": 25, "change": "set Timeout to 25"}}
    >>> print(fixed_text(text, "t.yaml", [finding]), end="")
    Resources:
      F:
        Type: AWS::Lambda::Function
        Properties:
          Timeout: 25  # s
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TODO = "TODO(safetycatch env-secrets): use {{resolve:secretsmanager:SECRET_ID:SecretString:KEY}}, then rotate it"
# Where a new property goes: after the first of these the mapping has (else at its end).
AFTER = {"Timeout": ("MemorySize", "Handler", "Runtime"), "ReservedConcurrentExecutions": ("Timeout", "MemorySize",
         "Handler", "Runtime"), "FunctionResponseTypes": ("BatchSize", "Queue", "Stream", "EventSourceArn")}


@dataclass(frozen=True)
class Edit:
    """One change: the keys from the document's root, and what to do at the last one (``set`` a scalar,
    ``append`` to a list, ``replace`` only a stated value, ``comment`` the key's line)."""

    keys: tuple[str, ...]
    value: Any
    kind: str


def edits(finding: dict[str, Any]) -> list[Edit]:
    """The edits a finding's proposal stands for (none for a change a template cannot state).

    Example:
        >>> edits({"policy": "reserved-concurrency", "resource": "F",
        ...        "fix": {"path": "Resources.F.Properties.ReservedConcurrentExecutions", "value": 50}})
        [Edit(keys=('Resources', 'F', 'Properties', 'ReservedConcurrentExecutions'), value=50, kind='set')]
    """
    policy, fix = finding.get("policy"), finding.get("fix") or {}
    path, value = str(fix.get("path") or ""), fix.get("value")
    own = ("Resources", str(finding.get("resource")), "Properties")
    if not path.startswith("Resources."):
        return []  # a Terraform address, or advice that is not one value
    keys = tuple(path.split("."))
    if policy in ("apigw-timeout", "reserved-concurrency") and isinstance(value, int) and not isinstance(value, bool):
        return [Edit(keys, value, "set")]
    if policy == "batch-partial-failure":
        return [Edit(keys, "ReportBatchItemFailures", "append")]
    if policy == "recursive-trigger":
        return [Edit((*own, "RecursiveLoop"), "Terminate", "replace")]
    if policy == "env-secrets":
        return [Edit((*own, "Environment", "Variables", str(name)), TODO, "comment")
                for name in fix.get("variables") or []]
    return []


def _container(doc: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
    node = doc
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value.isdigit()


class Unchangeable(Exception):
    """The file cannot be rewritten without changing more than the fix (``str()`` says why)."""


# -- JSON: the document dumped again with its own indentation (only when that gives back the same bytes) --------

def _json_edit(doc: Any, edit: Edit) -> None:
    node, key = _container(doc, edit.keys), edit.keys[-1]
    if node is None:
        return
    current = node.get(key)
    if edit.kind == "set" and (key not in node or _number(current)) and current != edit.value:
        _insert(node, key, edit.value)
    elif edit.kind == "replace" and isinstance(current, str) and current != edit.value:
        node[key] = edit.value
    elif edit.kind == "append" and key not in node:
        _insert(node, key, [edit.value])
    elif edit.kind == "append" and isinstance(current, list) and all(isinstance(v, str) for v in current):
        if edit.value not in current:
            current.append(edit.value)


def _insert(node: dict[str, Any], key: str, value: Any) -> None:
    if key in node:
        node[key] = value
        return
    names = list(node)
    at = next((names.index(k) + 1 for k in AFTER.get(key, ()) if k in node), len(names))
    items = list(node.items())
    items.insert(at, (key, value))
    node.clear()
    node.update(items)


# -- YAML: ruamel.yaml's round-trip reader says where each node is; only those lines are rewritten -------------

def _yaml_doc(text: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    return yaml.load(text)


_SCALAR = re.compile(r"""("[^"\\]*"|'[^']*'|[^\s#{}\[\],&*!|>'"][^#\n]*?)(?=\s*(?:#.*)?$)""")


def _scalar_span(line: str, col: int) -> tuple[int, int] | None:
    """The one-line plain or quoted scalar starting at ``col`` (None for a block scalar, a flow or a tag)."""
    match = _SCALAR.match(line.rstrip("\r\n"), col)
    return (col, match.end()) if match else None


def _ends_on_its_line(lines: list[str], row: int, col: int) -> bool:
    """Whether the key at ``lines[row]`` (its column ``col``) has no continuation on the next lines."""
    for line in lines[row + 1:]:
        text = line.strip()
        if text and not text.startswith("#"):
            return len(line) - len(line.lstrip(" ")) <= col
    return True


def _yaml_patch(lines: list[str], doc: Any, edit: Edit) -> tuple[int, int, list[str]] | None:
    """``(first row, rows replaced, new rows)`` for one edit, or None when it does not apply here."""
    node, key = _container(doc, edit.keys), edit.keys[-1]
    if node is None or not hasattr(node, "lc"):
        return None
    if key in node:
        return _yaml_change(lines, node, key, edit)
    if edit.kind not in ("set", "append"):
        return None
    return _yaml_add(lines, node, key, str(edit.value) if edit.kind == "set" else f"[{edit.value}]")


def _yaml_change(lines: list[str], node: Any, key: str, edit: Edit) -> tuple[int, int, list[str]] | None:
    current = node[key]
    row, col = node.lc.value(key)
    line = lines[row]
    if edit.kind == "comment":
        krow, kcol = node.lc.key(key)
        if row != krow or "#" in line or not _scalar_span(line, col) or not _ends_on_its_line(lines, row, kcol):
            return None
        body = line.rstrip("\r\n")
        return row, 1, [f"{body}  # {edit.value}{line[len(body):]}"]
    if edit.kind in ("set", "replace") and str(current) != str(edit.value) and (
            _number(current) if edit.kind == "set" else isinstance(current, str)):
        span = _scalar_span(line, col)
        if span is None:
            return None
        quote = line[col] if line[col] in "'\"" else ""
        return row, 1, [f"{line[:col]}{quote}{edit.value}{quote}{line[span[1]:]}"]
    if edit.kind == "append" and isinstance(current, list) and edit.value not in current:
        return _yaml_append(lines, current, str(edit.value))
    return None


def _yaml_append(lines: list[str], seq: Any, value: str) -> tuple[int, int, list[str]] | None:
    if not seq or not all(isinstance(v, str) for v in seq):
        return None
    row, col = seq.lc.item(len(seq) - 1)
    line = lines[row]
    if seq.fa.flow_style():
        close = line.find("]", col)
        return (row, 1, [f"{line[:close]}, {value}{line[close:]}"]) if close > 0 else None
    dash = line.rfind("-", 0, col)
    if dash < 0 or not _ends_on_its_line(lines, row, dash):
        return None
    return row + 1, 0, [f"{' ' * dash}- {value}{_eol(line)}"]


def _yaml_add(lines: list[str], node: Any, key: str, value: str) -> tuple[int, int, list[str]] | None:
    if node.fa.flow_style():
        row, col = node.lc.line, node.lc.col
        close = _closing(lines[row], col)
        if close is None:
            return None
        sep = ", " if node else ""
        return row, 1, [f"{lines[row][:close]}{sep}{key}: {value}{lines[row][close:]}"]
    for anchor in AFTER.get(key, ()):
        if anchor in node:
            row, col = node.lc.key(anchor)
            if lines[row][:col].strip() == "" and _ends_on_its_line(lines, row, col):
                return row + 1, 0, [f"{' ' * col}{key}: {value}{_eol(lines[row])}"]
    if not node:
        return None
    row, col = node.lc.key(next(iter(node)))
    if lines[row][:col].strip():
        return None  # the first key shares its line (a `- Key:` item): no safe place
    return row, 0, [f"{' ' * col}{key}: {value}{_eol(lines[row])}"]


def _closing(line: str, start: int) -> int | None:
    """The column of the ``}`` closing the flow mapping opened at ``start``, when it is on the same line."""
    depth, quote = 0, ""
    for at in range(start, len(line)):
        char = line[at]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return at if char == "}" else None
    return None


def _eol(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _yaml_fixed(text: str, wanted: list[Edit]) -> str:
    doc = _yaml_doc(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # a last line without a newline: restored below
    patches = [p for p in (_yaml_patch(lines, doc, e) for e in wanted) if p is not None]
    done: set[int] = set()
    for row, count, new in sorted(patches, key=lambda p: (p[0], p[1]), reverse=True):
        if count and row in done:
            continue  # two edits of one line (cannot happen for distinct keys): keep the first only
        done.add(row)
        lines[row:row + count] = new
    out = "".join(lines)
    return out if text.endswith("\n") or not text else out[:-1]


def _json_indent(text: str) -> int | None:
    match = re.search(r'\n( +)"', text)
    return len(match.group(1)) if match else None


def _dump_json(doc: Any, indent: int | None, text: str) -> str:
    out = json.dumps(doc, indent=indent, ensure_ascii=not _has_non_ascii(text))
    return out + "\n" if text.endswith("\n") else out


def _has_non_ascii(text: str) -> bool:
    return any(ord(c) > 127 for c in text)


def fixed_text(text: str, name: str, findings: list[dict[str, Any]]) -> str:
    """``text`` with every edit of ``findings`` written; ``text`` itself when none applies. Raises
    ``Unchangeable`` when the file cannot be edited without changing more than the fix (it is never written).

    Example:
        fixed_text(Path("template.yaml").read_text(), "template.yaml", report.findings)
    """
    wanted = [e for f in findings for e in edits(f)]
    if not wanted:
        return text
    try:
        if not name.lower().endswith(".json"):
            return _yaml_fixed(text, wanted)
        doc, indent = json.loads(text), _json_indent(text)
    except Exception as exc:  # ruamel's errors on hostile input are one line, never a traceback
        raise Unchangeable(f"cannot be edited ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from exc
    if _dump_json(doc, indent, text) != text:
        raise Unchangeable("its JSON layout is not one indentation: apply the fixes by hand")
    for edit in wanted:
        _json_edit(doc, edit)
    return _dump_json(doc, indent, text)


def unified_diff(before: str, after: str, name: str) -> str:
    """The change as ``diff -u`` prints it (``a/`` and ``b/`` prefixes, as git does)."""
    old, new = (name, name) if Path(name).is_absolute() else (f"a/{name}", f"b/{name}")
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), old, new))


# -- SARIF: the very same change as replacements -----------------------------------------------------------------

def sarif_fix(finding: dict[str, Any]) -> dict[str, Any] | None:
    """A SARIF ``fix`` holding exactly what ``check --fix`` writes for this finding alone (None when it writes
    nothing): one replacement per changed block, a one-line change as columns on that line.

    Example:
        sarif_fix({"policy": "apigw-timeout", "file": "t.yaml", "resource": "F", "line": 9,
                   "fix": {"path": "Resources.F.Properties.Timeout", "value": 25, "change": "set Timeout to 25"}})
    """
    if not edits(finding):
        return None
    try:
        text = Path(finding["file"]).read_bytes().decode("utf-8")
        after = fixed_text(text, str(finding["file"]), [finding])
    except (OSError, UnicodeDecodeError, Unchangeable):
        return None
    if after == text:
        return None
    from safetycatch.check import _uri

    return {"description": {"text": finding["fix"]["change"]}, "artifactChanges": [{
        "artifactLocation": {"uri": _uri(finding["file"])}, "replacements": replacements(text, after)}]}


def replacements(before: str, after: str) -> list[dict[str, Any]]:
    """SARIF replacements turning ``before`` into ``after``: each has ``charOffset``/``charLength``, and lines
    and columns (1-based) where the region is inside the file.

    Example:
        >>> replacements("a: 1\\n", "a: 2\\n")[0]["insertedContent"]
        {'text': '2'}
    """
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    starts = [0]
    for line in old:
        starts.append(starts[-1] + len(line))
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i2 - i1 == 1 and j2 - j1 == 1:
            a, b = old[i1], new[j1]
            head = len(_common(a, b))
            tail = len(_common(a[head:][::-1], b[head:][::-1]))
            region = {"startLine": i1 + 1, "startColumn": head + 1, "endLine": i1 + 1,
                      "endColumn": len(a) - tail + 1, "charOffset": starts[i1] + head,
                      "charLength": len(a) - tail - head}
            text = b[head:len(b) - tail]
        else:
            region = {"charOffset": starts[i1], "charLength": starts[i2] - starts[i1]}
            if i2 < len(old):  # from the start of line i1 + 1 to the start of line i2 + 1
                region.update({"startLine": i1 + 1, "startColumn": 1, "endLine": i2 + 1, "endColumn": 1})
            text = "".join(new[j1:j2])
        out.append({"deletedRegion": region, "insertedContent": {"text": text}})
    return out


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
