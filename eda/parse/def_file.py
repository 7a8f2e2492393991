"""DEF reader: die area, placed components, I/O pins and net connectivity (routing geometry is skipped).

Coordinates are returned in µm (DEF database units divided by UNITS DISTANCE MICRONS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eda.parse.errors import ParseError


@dataclass(frozen=True)
class Component:
    """A placed cell instance; (x, y) is its lower-left corner in µm."""

    name: str
    macro: str
    x: float
    y: float
    orient: str


@dataclass(frozen=True)
class IOPin:
    """A design port; (x, y) in µm, direction 'INPUT'/'OUTPUT'/'' as written."""

    name: str
    net: str
    direction: str
    x: float
    y: float


@dataclass
class Design:
    """What a DEF says about a design. nets maps net name → [(instance or 'PIN', pin name)]."""

    name: str = ""
    units: int = 100
    die: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    components: dict[str, Component] = field(default_factory=dict)
    pins: dict[str, IOPin] = field(default_factory=dict)
    nets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class _Tokens:
    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.toks: list[tuple[str, int]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            self.toks.extend((t, lineno) for t in line.split("#", 1)[0].split())
        self.i = 0

    def peek(self) -> str:
        return self.toks[self.i][0] if self.i < len(self.toks) else ""

    def line(self) -> int:
        return self.toks[min(self.i, len(self.toks) - 1)][1] if self.toks else 1

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise ParseError(self.path, self.line(), what, "end of file")
        self.i += 1
        return self.toks[self.i - 1][0]

    def expect(self, word: str) -> None:
        line = self.line()
        got = self.next(repr(word))
        if got != word:
            raise ParseError(self.path, line, repr(word), got)

    def number(self, what: str) -> float:
        line = self.line()
        got = self.next(what)
        try:
            return float(got)
        except ValueError:
            raise ParseError(self.path, line, what, got) from None

    def point(self) -> tuple[float, float]:
        self.expect("(")
        x, y = self.number("an x coordinate"), self.number("a y coordinate")
        self.expect(")")
        return x, y

    def skip_statement(self) -> None:
        while self.next("';'") != ";":
            pass


def _section_items(tk: _Tokens, section: str):
    """Yield once per '- name ...' item of a counted section, positioned after the name; checks END."""
    tk.number(f"the {section} count")
    tk.expect(";")
    while tk.peek() == "-":
        tk.next("'-'")
        yield tk.next(f"a {section} item name")
    tk.expect("END")
    tk.expect(section)


def _components(tk: _Tokens, d: Design) -> None:
    for name in _section_items(tk, "COMPONENTS"):
        macro = tk.next("a macro name")
        x = y = 0.0
        orient = ""
        while (word := tk.next("';'")) != ";":
            if word == "+":
                kind = tk.next("a component attribute")
                if kind in ("PLACED", "FIXED", "COVER"):
                    x, y = tk.point()
                    orient = tk.next("an orientation")
        d.components[name] = Component(name, macro, x / d.units, y / d.units, orient)


def _pins(tk: _Tokens, d: Design) -> None:
    for name in _section_items(tk, "PINS"):
        net, direction, x, y = name, "", 0.0, 0.0
        while (word := tk.next("';'")) != ";":
            if word != "+":
                continue
            kind = tk.next("a pin attribute")
            if kind == "NET":
                net = tk.next("a net name")
            elif kind == "DIRECTION":
                direction = tk.next("a direction")
            elif kind in ("PLACED", "FIXED", "COVER"):
                x, y = tk.point()
                tk.next("an orientation")
        d.pins[name] = IOPin(name, net, direction, x / d.units, y / d.units)


def _nets(tk: _Tokens, d: Design, section: str) -> None:
    for name in _section_items(tk, section):
        conns = []
        while tk.peek() == "(":
            tk.next("'('")
            inst = tk.next("an instance name")
            pin = tk.next("a pin name")
            tk.expect(")")
            conns.append((inst, pin))
        tk.skip_statement()
        if section == "NETS":
            d.nets[name] = conns


def parse_def(text: str, path: str = "<string>") -> Design:
    tk = _Tokens(text, path)
    d = Design()
    while tk.peek():
        line, word = tk.line(), tk.next("a DEF statement")
        if word == "DESIGN":
            d.name = tk.next("a design name")
            tk.expect(";")
        elif word == "UNITS":
            tk.expect("DISTANCE")
            tk.expect("MICRONS")
            d.units = int(tk.number("database units per micron"))
            if d.units <= 0:
                raise ParseError(path, line, "positive database units per micron", str(d.units))
            tk.expect(";")
        elif word == "DIEAREA":
            (x0, y0), (x1, y1) = tk.point(), tk.point()
            d.die = (x0 / d.units, y0 / d.units, x1 / d.units, y1 / d.units)
            tk.skip_statement()
        elif word == "COMPONENTS":
            _components(tk, d)
        elif word == "PINS":
            _pins(tk, d)
        elif word in ("NETS", "SPECIALNETS"):
            _nets(tk, d, word)
        elif word == "END":
            tk.expect("DESIGN")
            break
        elif word in ("VIAS", "NONDEFAULTRULES", "BLOCKAGES", "REGIONS", "GROUPS", "PROPERTYDEFINITIONS"):
            while not (tk.next(f"END {word}") == "END" and tk.peek() == word):
                pass
            tk.next(word)
        elif word.isupper():
            tk.skip_statement()
        else:
            raise ParseError(path, line, "a DEF keyword", word)
    if not d.name:
        raise ParseError(path, tk.line(), "a DESIGN statement")
    return d


def read_def(path: str | Path) -> Design:
    return parse_def(Path(path).read_text(), str(path))
