"""Reader for qrouter's routed RC trees (`<top>.rc`, written by `qrouter -d`), one net per line:

    NET 1 DRIVER/PIN NSINKS ( R C item , item ... )     item = SINK/PIN | ( R C item , ... )

Each parenthesised node is a wire segment from its parent node: R in ohms, C in pF (the node's wire
capacitance, pin capacitances excluded). The driver is node 0; pins named PIN/<port> are design ports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from eda.parse.errors import ParseError

_TOKEN = re.compile(r"\(|\)|,|[^\s(),]+")


@dataclass(frozen=True)
class RcNet:
    """An RC tree. parent[k], res[k] (ohm) and cap[k] (pF) describe node k (node 0 is the driver pin, res 0);
    pins lists (node, 'INST/PIN') for the driver and every sink."""

    name: str
    driver: str
    parent: tuple[int, ...]
    res: tuple[float, ...]
    cap: tuple[float, ...]
    pins: tuple[tuple[int, str], ...]


def parse_rc_line(line: str, path: str = "<string>", lineno: int = 1) -> RcNet:
    toks = _TOKEN.findall(line)
    if len(toks) < 4:
        raise ParseError(path, lineno, "NET 1 DRIVER NSINKS ( tree )", line[:40])
    name, _, driver, nsinks = toks[:4]
    if not nsinks.isdigit() or "/" not in driver:
        raise ParseError(path, lineno, "a DRIVER/PIN and a sink count", f"{driver} {nsinks}")
    parent, res, cap, pins = [-1], [0.0], [0.0], [(0, driver)]
    stack = [0]
    i = 4
    while i < len(toks):
        tok = toks[i]
        if tok == "(":
            if i + 2 >= len(toks):
                raise ParseError(path, lineno, "R C after '('", "end of line")
            try:
                r, c = float(toks[i + 1]), float(toks[i + 2])
            except ValueError:
                raise ParseError(path, lineno, "two numbers (R ohm, C pF) after '('", toks[i + 1]) from None
            if not stack:
                raise ParseError(path, lineno, "one tree per net", "(")
            parent.append(stack[-1])
            res.append(r)
            cap.append(c)
            stack.append(len(parent) - 1)
            i += 3
            continue
        if tok == ")":
            if len(stack) <= 1:
                raise ParseError(path, lineno, "a matching '('", ")")
            stack.pop()
        elif tok != ",":
            if len(stack) <= 1:
                raise ParseError(path, lineno, "a sink pin inside a segment", tok)
            pins.append((stack[-1], tok))
        i += 1
    if len(stack) != 1:
        raise ParseError(path, lineno, f"{len(stack) - 1} more ')'", "end of line")
    if len(pins) - 1 != int(nsinks):
        raise ParseError(path, lineno, f"{nsinks} sinks", str(len(pins) - 1))
    return RcNet(name, driver, tuple(parent), tuple(res), tuple(cap), tuple(pins))


def read_rc(path: str | Path) -> tuple[list[RcNet], list[ParseError]]:
    """All well-formed nets, and one ParseError per malformed line (qrouter writes a few; callers decide)."""
    nets, bad = [], []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            nets.append(parse_rc_line(line, str(path), lineno))
        except ParseError as e:
            bad.append(e)
    return nets, bad
