"""SDF reader: cell IOPATH delays, INTERCONNECT delays and SETUP/HOLD checks (OpenSTA's and qflow's SDF).

Delays are (rise, fall) pairs of the typical value of each (min:typ:max) triple (max, then min, if typ is
empty), in the file's TIMESCALE unit (reported as `timescale_ns`, so `value * timescale_ns` is ns);
a missing value is None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from eda.parse.errors import ParseError, scan

_TOKEN = re.compile(
    r'(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>//[^\n]*)|(?P<string>"[^"\n]*")|(?P<p>[()])|(?P<w>[^\s()"]+)'
)


@dataclass(frozen=True)
class Node:
    """An s-expression: head keyword, children (Node or str), line of the opening parenthesis."""

    head: str
    items: list
    line: int


@dataclass(frozen=True)
class Delay:
    """One annotated delay: rise and fall (typical of the triple; None where the file gives none)."""

    kind: str
    src: str
    dst: str
    rise: float | None
    fall: float | None


@dataclass
class Sdf:
    design: str = ""
    timescale_ns: float = 1.0
    iopaths: list[tuple[str, str, Delay]] = field(default_factory=list)  # (celltype, instance, delay)
    interconnects: list[Delay] = field(default_factory=list)
    checks: list[tuple[str, str, Delay]] = field(default_factory=list)  # (celltype, instance, SETUP/HOLD)


def _tokens(text: str, path: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) tokens: a parenthesis is its own kind; strings lose their quotes."""
    return [
        (value if kind == "p" else kind, value.strip('"') if kind == "string" else value, line)
        for kind, value, line in scan(_TOKEN, text, path, "an SDF token")
        if kind in ("p", "w", "string")
    ]


def _parse_tree(text: str, path: str) -> Node:
    toks = _tokens(text, path)
    end_line = toks[-1][2] if toks else 1
    i = 0

    def node() -> Node:
        nonlocal i
        line = toks[i][2]
        i += 1
        head = ""
        if i < len(toks) and toks[i][0] in ("w", "string"):
            head = toks[i][1].upper()
            i += 1
        items: list = []
        while i < len(toks) and toks[i][0] != ")":
            if toks[i][0] == "(":
                items.append(node())
            else:
                items.append(toks[i][1])
                i += 1
        if i >= len(toks):
            raise ParseError(path, end_line, f"')' closing the ({head} opened on line {line}", "end of file")
        i += 1
        return Node(head, items, line)

    if not toks or toks[0][0] != "(":
        raise ParseError(path, toks[0][2] if toks else 1, "'(DELAYFILE'", toks[0][1] if toks else "end of file")
    root = node()
    if i != len(toks):
        raise ParseError(path, toks[i][2], "end of file after DELAYFILE", toks[i][1])
    if root.head != "DELAYFILE":
        raise ParseError(path, root.line, "DELAYFILE", root.head)
    return root


def _triple(node: Node, path: str) -> float | None:
    """Typical value of `(min:typ:max)` or `(v)`; None for `()`."""
    if not node.head and not node.items:
        return None
    text = node.head or ""
    parts = text.split(":")
    if len(parts) not in (1, 3) or node.items:
        raise ParseError(path, node.line, "a delay value (v) or (min:typ:max)", text)
    # typ if given, else max (the setup-relevant bound), else min.
    pick = next((p for p in (parts[1], parts[2], parts[0]) if p), "") if len(parts) == 3 else parts[0]
    if not pick:
        return None
    try:
        return float(pick)
    except ValueError:
        raise ParseError(path, node.line, "a number in the delay triple", pick) from None


def _delay(node: Node, n_ports: int, path: str) -> Delay:
    words = [i for i in node.items if isinstance(i, str)]
    values = [i for i in node.items if isinstance(i, Node)]
    ports = [w for w in words if w.upper() not in ("POSEDGE", "NEGEDGE")]
    # A port may be written as a (posedge CLK) node: take its port name.
    for v in list(values):
        if v.head in ("POSEDGE", "NEGEDGE"):
            ports.append(str(v.items[0]) if v.items else "")
            values.remove(v)
    if len(ports) < n_ports or not values:
        raise ParseError(path, node.line, f"{n_ports} port(s) and a delay in {node.head}")
    rise = _triple(values[0], path)
    fall = _triple(values[1], path) if len(values) > 1 else rise
    src, dst = (ports[0], ports[1]) if n_ports == 2 else (ports[0], "")
    return Delay(node.head, src, dst, rise, fall)


_SCALES = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}


def _timescale(node: Node, path: str) -> float:
    text = "".join(str(i) for i in node.items).strip().lower()
    m = re.fullmatch(r"([\d.]+)?\s*(s|ms|us|ns|ps|fs)", text)
    if m is None:
        raise ParseError(path, node.line, "a TIMESCALE like 1ns or 100ps", text)
    return float(m.group(1) or 1) * _SCALES[m.group(2)]


def parse_sdf(text: str, path: str = "<string>") -> Sdf:
    root = _parse_tree(text, path)
    sdf = Sdf()
    for item in root.items:
        if not isinstance(item, Node):
            continue
        if item.head == "DESIGN":
            sdf.design = str(item.items[0]) if item.items else ""
        elif item.head == "TIMESCALE":
            sdf.timescale_ns = _timescale(item, path)
        elif item.head == "CELL":
            _cell(item, sdf, path)
    return sdf


def _cell(cell: Node, sdf: Sdf, path: str) -> None:
    celltype = instance = ""
    for part in cell.items:
        if not isinstance(part, Node):
            raise ParseError(path, cell.line, "(CELLTYPE ...), (INSTANCE ...) or a delay block", part)
        if part.head == "CELLTYPE":
            celltype = str(part.items[0]) if part.items else ""
        elif part.head == "INSTANCE":
            instance = str(part.items[0]) if part.items else ""
        elif part.head in ("DELAY", "TIMINGCHECK"):
            for block in part.items:
                if not isinstance(block, Node):
                    raise ParseError(path, part.line, "a parenthesised block", block)
                entries = block.items if block.head in ("ABSOLUTE", "INCREMENT") else [block]
                for e in entries:
                    if not isinstance(e, Node):
                        raise ParseError(path, block.line, "a delay entry", e)
                    if e.head == "IOPATH":
                        sdf.iopaths.append((celltype, instance, _delay(e, 2, path)))
                    elif e.head == "INTERCONNECT":
                        sdf.interconnects.append(_delay(e, 2, path))
                    elif e.head in ("SETUP", "HOLD"):
                        sdf.checks.append((celltype, instance, _delay(e, 2, path)))
                    elif e.head == "COND" and len(e.items) >= 2 and isinstance(e.items[-1], Node):
                        inner = e.items[-1]
                        if inner.head == "IOPATH":
                            sdf.iopaths.append((celltype, instance, _delay(inner, 2, path)))


def read_sdf(path: str | Path) -> Sdf:
    return parse_sdf(Path(path).read_text(), str(path))
