"""eda.designs: every named design yields Verilog with its top module, in a known family; the public designs
come from the installed packages (the DES example without its testbench, Amaranth's CRC processors)."""

import re

import pytest

from eda.designs import ARRAYS, DESIGNS, IVERILOG_EXAMPLES, PUBLIC, design_family, design_verilog

FAMILIES = {"add", "mul", "mac", "rot", "fifo", "gcd", "crc", "des", "pe", "array"}


# The PEs, the array and the 32-bit CRC take 10-30 s each to emit (Amaranth); hw.build's tests cover the PEs.
@pytest.mark.parametrize("name", [n for n in DESIGNS if n not in ARRAYS and n != "crc32x32" and n[:3] != "pe_"])
def test_design_has_its_top_module_and_a_family(name):
    text, top = design_verilog(name)
    assert re.search(rf"^\s*module\s+{re.escape(top)}\b", text, re.M) and design_family(name) in FAMILIES
    # The flow constrains a clock on the port `clk`.
    assert re.search(r"\bclk\b", text)


def test_public_designs_are_read_from_the_packages():
    assert {"crc16x8", "crc32x32"} <= set(PUBLIC) and design_family("crc32x32") == "crc"
    if (IVERILOG_EXAMPLES / "des.v").is_file():
        text, top = design_verilog("des")
        assert top == "des" and design_family("des") == "des"
        # The example's testbench (module top, with $dumpfile) is dropped; the 16 rounds stay.
        assert (
            "module top" not in text and "$dumpfile" not in text and len(re.findall(r"\broundfunc round", text)) == 16
        )
    assert design_family("array2x2_mixpe") == "array"
    with pytest.raises(KeyError, match="unknown design"):
        design_verilog("nope")
