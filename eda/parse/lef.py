"""Minimal LEF reader: macro sizes (µm) and routing-layer RC (RPERSQ Ω/sq, CPERSQDIST pF/µm², EDGECAPACITANCE pF/µm)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eda.parse.errors import ParseError


@dataclass(frozen=True)
class Layer:
    name: str
    width: float
    rpersq: float
    cpersqdist: float
    edgecap: float

    def ohm_per_um(self) -> float:
        return self.rpersq / self.width

    def pf_per_um(self) -> float:
        # Area term over the wire width plus one edge term: the model qrouter's RC output follows.
        return self.cpersqdist * self.width + self.edgecap


@dataclass
class Lef:
    sizes: dict[str, tuple[float, float]] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)


def _num(words: list[str], k: int, path: str, line: int, what: str) -> float:
    try:
        return float(words[k])
    except (IndexError, ValueError):
        raise ParseError(path, line, what, " ".join(words)) from None


def parse_lef(text: str, path: str = "<string>") -> Lef:
    lef = Lef()
    block: tuple[str, str] | None = None  # (top-level block keyword, its name); only MACRO and LAYER are read
    props: dict[str, float] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].replace(";", " ").split()
        if not words:
            continue
        head = words[0]
        if block is None and head in ("MACRO", "LAYER", "VIA", "VIARULE", "SITE"):
            if len(words) < 2:
                raise ParseError(path, lineno, f"a {head} name", raw.strip())
            block, props = (head, words[1]), {}
        elif block is not None and head == "END" and len(words) > 1 and words[1] == block[1]:
            kind, name = block
            if kind == "LAYER" and {"WIDTH", "RPERSQ", "CPERSQDIST"} <= props.keys():
                lef.layers[name] = Layer(
                    name, props["WIDTH"], props["RPERSQ"], props["CPERSQDIST"], props.get("EDGECAPACITANCE", 0.0)
                )
            block = None
        elif block is not None and block[0] == "MACRO" and head == "SIZE":
            if len(words) != 4 or words[2] != "BY":
                raise ParseError(path, lineno, "SIZE w BY h", raw.strip())
            lef.sizes[block[1]] = (_num(words, 1, path, lineno, "a width"), _num(words, 3, path, lineno, "a height"))
        elif block is not None and block[0] == "LAYER":
            if head == "WIDTH":
                props["WIDTH"] = _num(words, 1, path, lineno, "a width")
            elif head in ("RESISTANCE", "CAPACITANCE"):
                props[words[1] if len(words) > 1 else head] = _num(words, 2, path, lineno, f"a {head} value")
            elif head == "EDGECAPACITANCE":
                props[head] = _num(words, 1, path, lineno, "an edge capacitance")
    if block is not None:
        raise ParseError(path, len(text.splitlines()), f"END {block[1]}", "end of file")
    return lef


def read_lef(path: str | Path) -> Lef:
    return parse_lef(Path(path).read_text(), str(path))
