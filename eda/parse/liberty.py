"""Liberty (.lib) reader: cells, pins, capacitances, timing arcs and NLDM tables with interpolation.

Units are the library's own (osu018: ns for time and slew, pF for capacitance, µm² for area, pJ for
internal energy, nW for leakage, V for nom_voltage). `read_liberty(path)` parses the generic group/attribute
syntax, then `Library` gives the timing, power and logic view. This is the project's only Liberty reader:
hw.power (energy), hw.synth (sequential cells) and models.anomaly (cell functions) all read through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from eda.parse.errors import ParseError, scan

_TOKEN = re.compile(
    r'(?P<ws>[ \t\r]+|\\\n)|(?P<nl>\n)|(?P<comment>/\*.*?\*/|//[^\n]*)|(?P<string>"(?:[^"\\\n]|\\.)*")'
    r"|(?P<punct>[(){}:;,])|(?P<word>[^\s(){}:;,\"]+)",
    re.S,
)


@dataclass
class Group:
    """One Liberty group `kind (args) { ... }`: simple attributes, complex attributes and subgroups."""

    kind: str
    args: list[str]
    line: int
    attrs: dict[str, str] = field(default_factory=dict)
    complex: dict[str, list[str]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def subgroups(self, kind: str) -> list[Group]:
        return [g for g in self.groups if g.kind == kind]


def _tokens(text: str, path: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) tokens; strings lose their quotes."""
    out = []
    for kind, value, line in scan(_TOKEN, text, path, "a Liberty token"):
        if kind == "string":
            out.append(("string", value[1:-1].replace("\\\n", ""), line))
        elif kind in ("punct", "word"):
            out.append((kind if kind == "word" else value, value, line))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]], path: str) -> None:
        self.toks, self.i, self.path = tokens, 0, path

    def peek(self) -> tuple[str, str, int]:
        if self.i < len(self.toks):
            return self.toks[self.i]
        return ("eof", "", self.toks[-1][2] if self.toks else 1)

    def take(self, kind: str, what: str) -> str:
        tok = self.peek()
        if tok[0] != kind:
            raise ParseError(self.path, tok[2], what, tok[1] or "end of file")
        self.i += 1
        return tok[1]

    def value(self) -> str:
        tok = self.peek()
        if tok[0] not in ("word", "string"):
            raise ParseError(self.path, tok[2], "a value", tok[1] or "end of file")
        self.i += 1
        return tok[1]

    def args(self) -> list[str]:
        self.take("(", "'('")
        args: list[str] = []
        while self.peek()[0] != ")":
            args.append(self.value())
            if self.peek()[0] == ",":
                self.i += 1
            elif self.peek()[0] != ")":
                tok = self.peek()
                raise ParseError(self.path, tok[2], "',' or ')'", tok[1] or "end of file")
        self.i += 1
        return args

    def group_body(self, group: Group) -> Group:
        self.take("{", "'{'")
        while self.peek()[0] != "}":
            name_line = self.peek()[2]
            name = self.take("word", "an attribute or group name")
            nxt = self.peek()[0]
            if nxt == ":":
                self.i += 1
                group.attrs[name] = self.value()
                # osu018 and most libraries end simple attributes with ';', some omit it before '}'.
                if self.peek()[0] == ";":
                    self.i += 1
            elif nxt == "(":
                args = self.args()
                if self.peek()[0] == "{":
                    group.groups.append(self.group_body(Group(name, args, name_line)))
                else:
                    group.complex[name] = args
                    if self.peek()[0] == ";":
                        self.i += 1
            else:
                tok = self.peek()
                raise ParseError(self.path, tok[2], f"':' or '(' after {name!r}", tok[1] or "end of file")
        self.i += 1
        return group

    def library(self) -> Group:
        line = self.peek()[2]
        kind = self.take("word", "'library'")
        if kind != "library":
            raise ParseError(self.path, line, "'library'", kind)
        group = self.group_body(Group(kind, self.args(), line))
        if self.peek()[0] != "eof":
            raise ParseError(self.path, self.peek()[2], "end of file", self.peek()[1])
        return group


def parse_groups(text: str, path: str = "<string>") -> Group:
    """The top `library` group of Liberty text."""
    return _Parser(_tokens(text, path), path).library()


def _floats(text: str, path: str, line: int) -> list[float]:
    try:
        return [float(v) for v in text.replace("\\", " ").split(",") if v.strip()]
    except ValueError:
        raise ParseError(path, line, "comma-separated numbers", text[:40]) from None


@dataclass(frozen=True)
class Table:
    """An NLDM look-up table. axes[i] names variable i (e.g. 'input_net_transition'); values has shape of the axes."""

    axes: tuple[str, ...]
    index: tuple[np.ndarray, ...]
    values: np.ndarray

    def lookup(self, *, clamp: bool = False, **point: float) -> float:
        """Bilinear interpolation at named axis values (extra names are ignored); outside the table it
        extrapolates linearly, or with clamp=True holds the edge value (as np.interp does)."""
        coords = []
        for axis, idx in zip(self.axes, self.index, strict=True):
            x = point[axis]
            if clamp:
                x = min(max(x, float(idx[0])), float(idx[-1]))
            if len(idx) == 1:
                coords.append((0, 0, 0.0))
                continue
            k = int(np.clip(np.searchsorted(idx, x) - 1, 0, len(idx) - 2))
            coords.append((k, k + 1, (x - idx[k]) / (idx[k + 1] - idx[k])))
        if len(coords) == 1:
            (a, b, t) = coords[0]
            return float(self.values[a] * (1 - t) + self.values[b] * t)
        (a0, a1, t), (b0, b1, u) = coords
        v = self.values
        return float(
            v[a0, b0] * (1 - t) * (1 - u) + v[a1, b0] * t * (1 - u) + v[a0, b1] * (1 - t) * u + v[a1, b1] * t * u
        )


POWER_KINDS = ("rise_power", "fall_power")
TABLE_KINDS = ("cell_rise", "cell_fall", "rise_transition", "fall_transition", "rise_constraint", "fall_constraint")


@dataclass(frozen=True)
class TimingArc:
    """Arc from related_pin to the owning pin; tables maps TABLE_KINDS present to their Table."""

    related_pin: str
    sense: str
    kind: str
    tables: dict[str, Table]


@dataclass(frozen=True)
class PowerArc:
    """One internal_power group of a pin: energy per rise and per fall of the pin (pJ for osu018), charged
    when related_pin ("" if the group names none) causes the transition."""

    related_pin: str
    rise: Table
    fall: Table


@dataclass(frozen=True)
class StateElement:
    """A cell's ff or latch group: its state variables (e.g. ("IQ", "IQN")) and the next_state (ff) or
    data_in (latch) function in Liberty syntax ("" if absent)."""

    kind: str
    variables: tuple[str, ...]
    next_state: str


@dataclass(frozen=True)
class Pin:
    """A cell pin; capacitances in the library unit (pF for osu018); power holds its internal_power groups
    that have both a rise and a fall table."""

    name: str
    direction: str
    capacitance: float
    rise_capacitance: float
    fall_capacitance: float
    is_clock: bool
    function: str
    arcs: tuple[TimingArc, ...]
    power: tuple[PowerArc, ...] = ()


@dataclass(frozen=True)
class Cell:
    """A library cell: area (µm²), pins in file order, leakage (nW), and its ff/latch group if it holds state."""

    name: str
    area: float
    pins: dict[str, Pin]
    leakage_power: float = 0.0
    state: StateElement | None = None

    @property
    def sequential(self) -> bool:
        return self.state is not None

    def outputs(self) -> list[str]:
        return [p.name for p in self.pins.values() if p.direction == "output"]


@dataclass(frozen=True)
class Library:
    """name, time_unit (e.g. "1ns"), nom_voltage (V; 0.0 if the library states none) and cells by name."""

    name: str
    time_unit: str
    cells: dict[str, Cell]
    nom_voltage: float = 0.0


def _table(group: Group, templates: dict[str, Group], path: str) -> Table:
    template = templates.get(group.args[0]) if group.args else None
    if group.args and group.args[0] != "scalar" and template is None:
        raise ParseError(path, group.line, f"a lu_table_template named {group.args[0]!r}")
    if "values" not in group.complex:
        raise ParseError(path, group.line, f"'values' in {group.kind}")
    axes, index = [], []
    for i in (1, 2):
        key = f"index_{i}"
        src = group if key in group.complex else template
        if src is None or key not in src.complex:
            continue
        var = template.attrs.get(f"variable_{i}") if template is not None else None
        if var is None:
            raise ParseError(path, group.line, f"variable_{i} in template {group.args[0]!r}")
        axes.append(var)
        index.append(np.array(_floats(",".join(src.complex[key]), path, group.line)))
    rows = [_floats(r, path, group.line) for r in group.complex["values"]]
    if not axes:
        if len(rows) != 1 or len(rows[0]) != 1:
            raise ParseError(path, group.line, "one value in a scalar table")
        return Table(("input_net_transition",), (np.zeros(1),), np.array(rows[0]))
    shape = tuple(len(i) for i in index)
    flat = [v for r in rows for v in r]
    if len(flat) != int(np.prod(shape)) or any(np.any(np.diff(i) <= 0) for i in index):
        raise ParseError(path, group.line, f"{int(np.prod(shape))} values over increasing indices in {group.kind}")
    return Table(tuple(axes), tuple(index), np.array(flat).reshape(shape))


def _number(group: Group, name: str, path: str, default: float = 0.0) -> float:
    if name not in group.attrs:
        return default
    try:
        return float(group.attrs[name])
    except ValueError:
        raise ParseError(path, group.line, f"a number for {name}", group.attrs[name]) from None


def library_from_groups(top: Group, path: str = "<string>") -> Library:
    """The timing view of a parsed `library` group."""
    templates = {g.args[0]: g for g in top.groups if g.kind.endswith("_template") and g.args}
    cells = {}
    for cg in top.subgroups("cell"):
        if not cg.args:
            raise ParseError(path, cg.line, "a cell name")
        pins = {}
        for pg in cg.subgroups("pin"):
            if not pg.args:
                raise ParseError(path, pg.line, "a pin name")
            arcs = []
            for tg in pg.subgroups("timing"):
                tables = {g.kind: _table(g, templates, path) for g in tg.groups if g.kind in TABLE_KINDS}
                arcs.append(
                    TimingArc(
                        related_pin=tg.attrs.get("related_pin", ""),
                        sense=tg.attrs.get("timing_sense", ""),
                        kind=tg.attrs.get("timing_type", "combinational"),
                        tables=tables,
                    )
                )
            power = []
            for ig in pg.subgroups("internal_power"):
                energy = {g.kind: _table(g, templates, path) for g in ig.groups if g.kind in POWER_KINDS}
                if len(energy) == 2:
                    power.append(PowerArc(ig.attrs.get("related_pin", ""), energy["rise_power"], energy["fall_power"]))
            cap = _number(pg, "capacitance", path)
            for name in pg.args:
                pins[name] = Pin(
                    name=name,
                    direction=pg.attrs.get("direction", ""),
                    capacitance=cap,
                    rise_capacitance=_number(pg, "rise_capacitance", path, cap),
                    fall_capacitance=_number(pg, "fall_capacitance", path, cap),
                    is_clock=pg.attrs.get("clock", "false") == "true",
                    function=pg.attrs.get("function", ""),
                    arcs=tuple(arcs),
                    power=tuple(power),
                )
        state = next(
            (
                StateElement(g.kind, tuple(g.args), g.attrs.get("next_state", g.attrs.get("data_in", "")))
                for g in cg.groups
                if g.kind in ("ff", "latch")
            ),
            None,
        )
        leakage = _number(cg, "cell_leakage_power", path)
        cells[cg.args[0]] = Cell(cg.args[0], _number(cg, "area", path), pins, leakage, state)
    name, time_unit = top.args[0] if top.args else "", top.attrs.get("time_unit", "")
    return Library(name, time_unit, cells, _number(top, "nom_voltage", path))


def parse_liberty(text: str, path: str = "<string>") -> Library:
    return library_from_groups(parse_groups(text, path), path)


@cache
def read_liberty(path: str | Path) -> Library:
    """Parse a Liberty file (cached per path: the library does not change during a run)."""
    return parse_liberty(Path(path).read_text(), str(path))
