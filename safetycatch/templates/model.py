"""What a template reader hands the checks: one ``TemplateFunction`` per function, wrapping the same
``FunctionSnapshot`` the inventory builds from AWS, plus where in the file each part is declared.

Example:
    >>> from chalicelib.core.model import FunctionRef, FunctionSnapshot
    >>> fn = TemplateFunction(FunctionSnapshot(FunctionRef("api", ACCOUNT, REGION)), "Api", "t.yaml", 7,
    ...                       {"Timeout": 9})
    >>> fn.line_of("Timeout"), fn.line_of("MemorySize")
    (9, 7)
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.core.model import FunctionSnapshot, NatGateway, NetworkFacts, Route, SubnetRouting, VpcEndpoint
from safetycatch.templates.intrinsics import ACCOUNT, REGION

__all__ = ["ACCOUNT", "REGION", "NetworkModel", "TemplateError", "TemplateFunction", "as_dict", "as_int", "as_list",
           "code_root", "local_code", "zipped_size"]

MAX_INT = 10**9  # no Lambda setting is larger: a bigger number in a template is noise, not a value


def as_dict(node: Any) -> dict[str, Any]:
    """``node`` when it is a mapping, else ``{}`` (templates are hostile input: any key may hold anything)."""
    return node if isinstance(node, dict) else {}


def as_list(node: Any) -> list[Any]:
    return node if isinstance(node, list) else []


def as_int(value: Any, default: int) -> int:
    """An integer setting as a template states it (``30``, ``"30"``, ``30.0``), else ``default`` (for ``1e400``,
    ``inf``, a list, a mapping or an unresolved intrinsic: hostile input never raises here).

    Example:
        >>> as_int("30", 3), as_int("1e400", 3), as_int([1], 3), as_int(None, 3)
        (30, 3, 3, 3)
    """
    if isinstance(value, bool) or value is None:
        return default
    try:
        number = float(value) if isinstance(value, (str, int, float)) else None
    except (ValueError, OverflowError):
        return default
    if number is None or number != number or abs(number) > MAX_INT:
        return default
    return int(number)


class TemplateError(Exception):
    """A file that cannot be read as a template or plan: ``str()`` is one line naming the file and line."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, " ".join(str(problem).split())[:300]
        super().__init__(f"{file}:{line}: {self.problem}" if line else f"{file}: {self.problem}")


@dataclass
class TemplateFunction:
    """A function declared in a template: its snapshot, its logical id (or Terraform address), the file and
    line of the resource, and the lines of the properties a finding may point at (``lines``; keys are
    property names, ``Events.<name>`` or ``mapping:<id>``). ``fixes`` says, per property, how the template
    spells it (``Properties.Timeout`` or ``timeout``). ``notes`` are what could not be read."""

    snapshot: FunctionSnapshot
    resource: str
    file: str
    line: int
    lines: dict[str, int] = field(default_factory=dict)
    language: str = "cloudformation"
    notes: list[str] = field(default_factory=list)
    mapping_paths: dict[str, str] = field(default_factory=dict)  # mapping id -> where its response types go
    inherited: set[str] = field(default_factory=set)  # properties the function takes from SAM Globals

    def line_of(self, key: str) -> int:
        return self.lines.get(key) or self.line


@dataclass
class NetworkModel:
    """The VPC pieces a template declares, by stand-in id; ``facts`` builds what vpc-no-egress reads."""

    subnets: dict[str, str] = field(default_factory=dict)                 # subnet -> vpc
    tables: dict[str, list[Route]] = field(default_factory=dict)          # route table -> routes
    associations: dict[str, str] = field(default_factory=dict)            # subnet -> route table
    nats: dict[str, tuple[str, str]] = field(default_factory=dict)        # nat -> (its subnet, connectivity)
    endpoints: list[VpcEndpoint] = field(default_factory=list)

    def _routing(self, subnet: str) -> SubnetRouting:
        table = self.associations.get(subnet)
        vpc = self.subnets.get(subnet, "")
        if table is None:  # the VPC's main route table: created with the VPC, holding only the local route
            return SubnetRouting(subnet, vpc, f"main route table of {vpc}", True, (Route("vpc-cidr", "local"),))
        return SubnetRouting(subnet, vpc, table, False, tuple(self.tables.get(table, ())))

    def facts(self, subnet_ids: tuple[str, ...]) -> NetworkFacts | None:
        """None unless every subnet of the function is declared here (otherwise its routes are unknown).

        Example:
            >>> net = NetworkModel(subnets={"subnet-A": "vpc-V"})
            >>> net.facts(("subnet-A",)).subnets[0].main, net.facts(("subnet-B",))
            (True, None)
        """
        if not subnet_ids or any(s not in self.subnets for s in subnet_ids):
            return None
        routings = tuple(self._routing(s) for s in subnet_ids)
        nats = []
        for nat, (subnet, connectivity) in self.nats.items():
            routes = self._routing(subnet).routes if subnet in self.subnets else ()
            internet = any(r.destination == "0.0.0.0/0" and r.target.startswith("igw-") for r in routes)
            nats.append(NatGateway(nat, "available", connectivity or "public", internet or subnet not in self.subnets))
        return NetworkFacts(routings[0].vpc_id, routings, tuple(nats), tuple(self.endpoints))


MAX_CODE_BYTES = 262_144_000  # Lambda's limit for code and layers unzipped (250 MB): reading stops there
MAX_CODE_FILES = 50_000


def code_root(template: Path) -> Path:
    """Where a template's local code may be: the repository that holds it (the nearest folder with ``.git``),
    else the template's own folder. Nothing outside is ever read or zipped.

    Example:
        >>> code_root(Path("tests/templates/sam.yaml")) == Path.cwd().resolve()
        True
    """
    folder = template.resolve().parent
    return next((c for c in (folder, *folder.parents) if (c / ".git").exists()), folder)


def local_code(template: Path, uri: str, what: str = "CodeUri") -> tuple[Path | None, str]:
    """The local code a template points at, inside ``code_root`` (``(path, "")``), else ``(None, note)``.

    Example:
        >>> local_code(Path("tests/templates/sam.yaml"), "/usr/share")[1].split(":")[0]
        'CodeUri /usr/share is outside the repository of the template'
    """
    root = code_root(template)
    try:
        target = (template.parent / uri).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None, f"{what} {uri} cannot be resolved: not read"
    if target != root and root not in target.parents:
        return None, (f"{what} {uri} is outside the repository of the template: not read (package-size counts only "
                      "code inside it)")
    if not target.exists():
        return None, f"{what} {uri} is not found next to the template (package-size counts only local code)"
    return target, ""


def zipped_size(path: Path, root: Path | None = None) -> int:
    """Bytes of ``path`` as Lambda would receive it: a .zip / .jar as is, a directory or file deflated. Symbolic
    links are not followed out of ``root`` (default: ``path``); reading stops after ``MAX_CODE_BYTES`` unzipped
    or ``MAX_CODE_FILES`` files (Lambda refuses more anyway), so the work per template is bounded.

    Example:
        >>> zipped_size(Path("safetycatch/templates/model.py")) > 0
        True
    """
    if path.is_file() and path.suffix.lower() in (".zip", ".jar"):
        return path.stat().st_size
    root = (root or path).resolve()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        read = 0
        for count, file in enumerate(_files(path, root)):
            size = file.stat().st_size
            if count >= MAX_CODE_FILES or read + size > MAX_CODE_BYTES:
                break
            read += size
            archive.write(file, file.name if file == path else str(file.relative_to(path)))
    return buffer.getbuffer().nbytes


def _files(path: Path, root: Path) -> Any:
    """Regular files under ``path`` in a stable order, never through a link that leaves ``root``."""
    if path.is_file():
        yield path
        return
    for folder, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            file = Path(folder) / name
            if file.is_symlink() and root not in file.resolve().parents:
                continue
            if file.is_file():
                yield file
