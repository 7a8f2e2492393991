"""Named designs for the flow: this project's PEs and a 2x2 array of them (hw.build), small registered
arithmetic circuits, barrel rotators, register-file FIFOs, a GCD state machine, and public designs shipped by
installed packages (CRC processors of the Amaranth standard library, iverilog's DES example), in families
(design_family).

The designs written here have inputs and outputs registered on `clk` (synchronous reset `rst`), so all paths
are register-to-register or port-to-register and the slack labels are well defined; the public ones are taken
as they are (DES has no reset, and its key feeds every round combinationally). Sizes after mapping to osu018
range from ~100 cells (`add8`) to ~13k (DES); place-and-route time grows about N^1.9.
"""

from __future__ import annotations

import re
from pathlib import Path

from hw.config import ArrayConfig, PEConfig


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


def _shifter(width: int) -> str:
    """A barrel rotator: y = a rotated left by sh bits (log2(width) mux levels)."""
    sw = width.bit_length() - 1
    return f"""module rot{width}(input clk, input rst, input [{width - 1}:0] a, input [{sw - 1}:0] sh,
  output reg [{width - 1}:0] y);
  reg [{width - 1}:0] ra;
  reg [{sw - 1}:0] rs;
  wire [{2 * width - 1}:0] twice = {{ra, ra}} << rs;
  always @(posedge clk) if (rst) begin ra <= 0; rs <= 0; y <= 0; end
    else begin ra <= a; rs <= sh; y <= twice[{2 * width - 1}:{width}]; end
endmodule
"""


def _fifo(depth: int, width: int) -> str:
    """A synchronous register-file FIFO with full/empty flags (writes when full and reads when empty are dropped)."""
    aw = depth.bit_length() - 1
    return f"""module fifo{depth}x{width}(input clk, input rst, input push, input pop, input [{width - 1}:0] din,
  output reg [{width - 1}:0] dout, output full, output empty);
  reg [{width - 1}:0] mem [0:{depth - 1}];
  reg [{aw}:0] wp, rp;
  assign empty = wp == rp;
  assign full = (wp[{aw - 1}:0] == rp[{aw - 1}:0]) && (wp[{aw}] != rp[{aw}]);
  integer k;
  always @(posedge clk) if (rst) begin wp <= 0; rp <= 0; dout <= 0;
      for (k = 0; k < {depth}; k = k + 1) mem[k] <= 0; end
    else begin
      if (push && !full) begin mem[wp[{aw - 1}:0]] <= din; wp <= wp + 1; end
      if (pop && !empty) begin dout <= mem[rp[{aw - 1}:0]]; rp <= rp + 1; end
    end
endmodule
"""


def _gcd(width: int) -> str:
    """Euclid's GCD by subtraction: an IDLE/RUN/DONE state machine around a subtract-and-compare datapath."""
    return f"""module gcd{width}(input clk, input rst, input start, input [{width - 1}:0] a, input [{width - 1}:0] b,
  output reg [{width - 1}:0] y, output reg done);
  localparam IDLE = 2'd0, RUN = 2'd1, FIN = 2'd2;
  reg [1:0] state;
  reg [{width - 1}:0] x, z;
  always @(posedge clk) if (rst) begin state <= IDLE; x <= 0; z <= 0; y <= 0; done <= 0; end
    else case (state)
      IDLE: begin done <= 0; if (start) begin x <= a; z <= b; state <= RUN; end end
      RUN: if (x == z || z == 0) state <= FIN;
           else if (x > z) x <= x - z; else z <= z - x;
      default: begin y <= x; done <= 1; state <= IDLE; end
    endcase
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
OTHER = {
    **{f"rot{w}": (lambda w=w: (_shifter(w), f"rot{w}")) for w in (16, 32)},
    **{f"fifo{d}x{w}": (lambda d=d, w=w: (_fifo(d, w), f"fifo{d}x{w}")) for d, w in ((8, 8), (16, 8))},
    **{f"gcd{w}": (lambda w=w: (_gcd(w), f"gcd{w}")) for w in (8, 16)},
}
PES = {
    "pe_int8": lambda: _pe(PEConfig(pe="int8", wbits=8, wformat="signed", act="int8")),
    "pe_mixpe_w2": lambda: _pe(PEConfig(pe="mixpe", wbits=2, act="int8", group=4)),
    "pe_dequant_w2": lambda: _pe(PEConfig(pe="dequant", wbits=2, act="int8", group=4)),
    # The demo's PE (make demo builds it): 2,166 cells, routed on 3 layers (as sim.routed_cost routes it).
    "pe_mixpe_w4g128": lambda: _pe(PEConfig(pe="mixpe", wbits=4, act="int8", group=128)),
}
# Output-stationary arrays of this project's PEs (hw.build): the W4A8 group-128 MixPE PE is the smallest that
# routes on 3 layers without a failed attempt (2,166 cells, 33 s of routing), so its 2x2 array is the family's.
ARRAYS = {"array2x2_mixpe": lambda: _pe(ArrayConfig(PEConfig(pe="mixpe", wbits=4, act="int8", group=128), 2, 2))}

# Public Verilog that an installed Debian package ships, read where the package put it (never copied here) and
# listed only when present. iverilog's examples/des.v: a 16-round DES encryptor with registered S-box ROMs
# (Chris Eilbeck 1998, Verilog by "ajb" 1999; its header grants free civil use, including commercial, and
# forbids military, diplomatic or governmental use: not an OSI license). Its testbench module `top` is dropped.
IVERILOG_EXAMPLES = Path("/usr/share/doc/iverilog/examples")


def _public(path: Path, top: str, drop: str) -> tuple[str, str]:
    """(Verilog text of `path` without module `drop`, top module name)."""
    text = re.sub(rf"^module {drop}\b.*?^endmodule\n", "", path.read_text(), flags=re.S | re.M)
    return text, top


def _amaranth_crc(algorithm: str, data_width: int, name: str) -> tuple[str, str]:
    """A CRC processor of the Amaranth standard library (amaranth.lib.crc, PyPI package amaranth,
    BSD-2-Clause): `data_width` bits per cycle into the catalog's `algorithm`, registered CRC and match flag."""
    from amaranth.back import verilog
    from amaranth.lib.crc import catalog

    crc = getattr(catalog, algorithm)(data_width=data_width).create()
    return verilog.convert(crc, name=name, ports=[crc.start, crc.data, crc.valid, crc.crc, crc.match_detected]), name


PUBLIC = {
    **{
        name: (lambda path=path, top=top, drop=drop: _public(path, top, drop))
        for name, path, top, drop in (("des", IVERILOG_EXAMPLES / "des.v", "des", "top"),)
        if path.is_file()
    },
    "crc16x8": lambda: _amaranth_crc("CRC16_CCITT", 8, "crc16x8"),
    "crc32x32": lambda: _amaranth_crc("CRC32_ETHERNET", 32, "crc32x32"),
}
DESIGNS = {**ARITHMETIC, **OTHER, **PES, **ARRAYS, **PUBLIC}
SMALLEST = "add8"
# Layers to start routing on where fewer are known to leave nets unrouted (each failed attempt on a 2.4k-cell PE
# costs 10-15 minutes): the MixPE and dequant PEs route completely only on all 6 osu018 layers (103 nets stay
# unrouted on 4, 127 on 3 with the placement spread to density 0.6).
DESIGN_ROUTE_LAYERS = {"pe_mixpe_w2": 6, "pe_dequant_w2": 6, "array2x2_mixpe": 4, "des": 4}


def design_family(name: str) -> str:
    """The family a named design belongs to ('add', 'mul', 'mac', 'rot', 'fifo', 'gcd', 'crc', 'des', 'pe' or
    'array'): designs of one family differ only in size or pipelining, so a held-out design must not have its
    family in training."""
    if name in ARRAYS:
        return "array"
    return (
        "pe"
        if name in PES
        else name[:3]
        if name.startswith(("mul", "mac", "add", "rot", "gcd", "crc", "des"))
        else "fifo"
    )


def design_verilog(name: str) -> tuple[str, str]:
    """(Verilog text, top module name) of a named design; KeyError lists the names."""
    if name not in DESIGNS:
        raise KeyError(f"unknown design {name!r}: choose one of {', '.join(DESIGNS)}")
    return DESIGNS[name]()
