"""What a template reader hands the checks: one ``TemplateFunction`` per function, wrapping the same
``FunctionSnapshot`` the inventory builds from AWS, plus where in the file each part is declared.

Example:
    >>> from chalicelib.model import FunctionRef, FunctionSnapshot
    >>> fn = TemplateFunction(FunctionSnapshot(FunctionRef("api", ACCOUNT, REGION)), "Api", "t.yaml", 7,
    ...                       {"Timeout": 9})
    >>> fn.line_of("Timeout"), fn.line_of("MemorySize")
    (9, 7)
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.model import FunctionSnapshot, NatGateway, NetworkFacts, Route, SubnetRouting, VpcEndpoint
from cli.templates.intrinsics import ACCOUNT, REGION

__all__ = ["ACCOUNT", "REGION", "NetworkModel", "TemplateError", "TemplateFunction", "as_dict", "as_int", "as_list",
           "zipped_size"]

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


def zipped_size(path: Path) -> int:
    """Bytes of ``path`` as Lambda would receive it: a .zip / .jar as is, a directory or file deflated.

    Example:
        >>> zipped_size(Path("cli/templates/model.py")) > 0
        True
    """
    if path.is_file() and path.suffix.lower() in (".zip", ".jar"):
        return path.stat().st_size
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, file.name if file == path else str(file.relative_to(path)))
    return buffer.getbuffer().nbytes
