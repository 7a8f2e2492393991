"""Named designs for the flow: this project's PEs (hw.build) and small registered arithmetic circuits.

Every design has inputs and outputs registered on `clk` (synchronous reset `rst`), so all paths are
register-to-register or port-to-register and the slack labels are well defined. Sizes after mapping
to osu018 range from ~100 cells (`add8`) to ~3k (the PEs); place-and-route time grows about N^1.9.
"""

from __future__ import annotations

from hw.config import PEConfig


def _adder(width: int) -> str:
    return f"""module add{width}(input clk, input rst, input [{width - 1}:0] a, input [{width - 1}:0] b,
  output reg [{width}:0] s);
  reg [{width - 1}:0] ra, rb;
  always @(posedge clk) if (rst) begin ra <= 0; rb <= 0; s <= 0; end
    else begin ra <= a; rb <= b; s <= ra + rb; end
endmodule
"""


def _multiplier(width: int, stages: int) -> str:
    """A width×width multiplier with `stages` extra output registers (retimed by nothing: pure delay)."""
    w2 = 2 * width
    regs = "".join(f"  reg [{w2 - 1}:0] p{k};\n" for k in range(stages))
    chain = "".join(f" p{k} <= {'ra * rb' if k == 0 else f'p{k - 1}'};" for k in range(stages))
    last = f"p{stages - 1}" if stages else "ra * rb"
    return f"""module mul{width}s{stages}(input clk, input rst, input [{width - 1}:0] a, input [{width - 1}:0] b,
  output reg [{w2 - 1}:0] y);
  reg [{width - 1}:0] ra, rb;
{regs}  always @(posedge clk) if (rst) begin ra <= 0; rb <= 0; y <= 0; end
    else begin ra <= a; rb <= b;{chain} y <= {last}; end
endmodule
"""


def _mac(width: int) -> str:
    acc = 2 * width + 4
    return f"""module mac{width}(input clk, input rst, input [{width - 1}:0] a, input [{width - 1}:0] b,
  output reg [{acc - 1}:0] acc);
  reg [{width - 1}:0] ra, rb;
  always @(posedge clk) if (rst) begin acc <= 0; ra <= 0; rb <= 0; end
    else begin ra <= a; rb <= b; acc <= acc + ra * rb; end
endmodule
"""


def _pe(cfg: PEConfig) -> tuple[str, str]:
    from hw.build import design_name, emit

    return emit(cfg)[0], design_name(cfg)


ARITHMETIC = {
    **{f"add{w}": (lambda w=w: (_adder(w), f"add{w}")) for w in (8, 16, 32)},
    **{f"mul{w}s{s}": (lambda w=w, s=s: (_multiplier(w, s), f"mul{w}s{s}")) for w in (4, 6, 8) for s in (0, 1)},
    **{f"mac{w}": (lambda w=w: (_mac(w), f"mac{w}")) for w in (4, 6, 8)},
}
PES = {
    "pe_int8": lambda: _pe(PEConfig(pe="int8", wbits=8, wformat="signed", act="int8")),
    "pe_mixpe_w2": lambda: _pe(PEConfig(pe="mixpe", wbits=2, act="int8", group=4)),
    "pe_dequant_w2": lambda: _pe(PEConfig(pe="dequant", wbits=2, act="int8", group=4)),
}
DESIGNS = {**ARITHMETIC, **PES}
SMALLEST = "add8"
# Layers to start routing on where fewer are known to leave nets unrouted (each failed attempt on a 2.4k-cell PE
# costs 10-15 minutes): the MixPE and dequant PEs route completely only on all 6 osu018 layers (103 nets stay
# unrouted on 4, 127 on 3 with the placement spread to density 0.6).
ROUTE_LAYERS = {"pe_mixpe_w2": 6, "pe_dequant_w2": 6}


def design_route_layers(name: str) -> int:
    """Metal layers eda.flow starts routing the named design on."""
    from eda.flow import ROUTE_LAYERS as DEFAULT

    return ROUTE_LAYERS.get(name, DEFAULT)


def design_verilog(name: str) -> tuple[str, str]:
    """(Verilog text, top module name) of a named design; KeyError lists the names."""
    if name not in DESIGNS:
        raise KeyError(f"unknown design {name!r}: choose one of {', '.join(DESIGNS)}")
    return DESIGNS[name]()
