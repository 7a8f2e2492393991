"""Gate-level Verilog (yosys/qflow `write_verilog` output) reader: ports, net names and cell instances."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from eda.parse.errors import ParseError

_DECL = re.compile(r"^\s*(input|output|inout|wire)\s+(?:\[(\d+):(\d+)\]\s+)?([^;=]+?)\s*(?:=[^;]*)?;", re.M)
_INST = re.compile(r"^\s*(\w+)\s+(\S+)\s*\((.*?)\)\s*;", re.M | re.S)
_CONN = re.compile(r"\.(\w+)\s*\(\s*([^()\s]*)\s*\)")


@dataclass
class Netlist:
    """ports maps port bit name ('a[3]' or 'clk') → 'input'/'output'; instances maps name → (cell, {pin: net})."""

    top: str = ""
    ports: dict[str, str] = field(default_factory=dict)
    nets: set[str] = field(default_factory=set)
    instances: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


def parse_netlist(text: str, path: str = "<string>") -> Netlist:
    m = re.search(r"^\s*module\s+(\S+)", text, re.M)
    if m is None:
        raise ParseError(path, 1, "a 'module' declaration")
    nl = Netlist(top=m.group(1))
    body = text[m.end() :]
    for d in _DECL.finditer(body):
        kind, hi, lo, names = d.groups()
        for name in (n.strip() for n in names.split(",")):
            bits = (
                [name]
                if hi is None
                else [f"{name}[{i}]" for i in range(min(int(hi), int(lo)), max(int(hi), int(lo)) + 1)]
            )
            for bit in bits:
                nl.nets.add(bit)
                if kind != "wire":
                    nl.ports[bit] = kind
    for inst in _INST.finditer(body):
        cell, name, conns = inst.groups()
        if cell in ("module", "input", "output", "inout", "wire", "assign"):
            continue
        pins = dict(_CONN.findall(conns))
        if not pins and conns.strip():
            line = text[: m.end() + inst.start()].count("\n") + 1
            raise ParseError(path, line, f"named connections .PIN(net) in instance {name}", conns.strip()[:40])
        nl.instances[name] = (cell, pins)
        nl.nets.update(pins.values())
    if "endmodule" not in body:
        raise ParseError(path, text.count("\n") + 1, "'endmodule'", "end of file")
    return nl


def read_netlist(path: str | Path) -> Netlist:
    return parse_netlist(Path(path).read_text(), str(path))
