"""eda.parse: known values on the real osu018 files, exact errors on broken ones, and fuzzing (hypothesis)."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eda.parse import ParseError
from eda.parse.def_file import parse_def
from eda.parse.lef import parse_lef, read_lef
from eda.parse.liberty import parse_liberty, read_liberty
from eda.parse.netlist import parse_netlist
from eda.parse.rc_tree import parse_rc_line
from eda.parse.sdf import parse_sdf

TECH = Path("/usr/share/qflow/tech/osu018")
LIB = TECH / "osu018_stdcells.lib"

SMALL_LIB = """library(tiny) {
  time_unit : "1ns";
  lu_table_template(t2) {
    variable_1 : total_output_net_capacitance;
    variable_2 : input_net_transition;
    index_1 ("1, 2");
    index_2 ("1, 2");
  }
  cell (INV) {
    area : 8;
    pin(A) { direction : input; capacitance : 0.01; }
    pin(Y) {
      direction : output;
      function : "(!A)";
      timing() {
        related_pin : "A";
        cell_rise(t2) {
          index_1 ("0.0, 0.1");
          index_2 ("0.0, 1.0");
          values ("0.1, 0.3", "0.5, 0.7");
        }
      }
    }
  }
}
"""

SMALL_DEF = """VERSION 5.6 ;
DESIGN top ;
UNITS DISTANCE MICRONS 100 ;
DIEAREA ( 0 0 ) ( 2000 1000 ) ;
COMPONENTS 2 ;
- u1 INVX1 + PLACED ( 100 200 ) N ;
- u2 INVX1 + PLACED ( 500 200 ) FS ;
END COMPONENTS
PINS 1 ;
- a + NET a + DIRECTION INPUT + LAYER metal2 ( -15 -15 ) ( 15 15 ) + PLACED ( 0 300 ) N ;
END PINS
NETS 2 ;
- a ( PIN a ) ( u1 A ) ;
- n1 ( u1 Y ) ( u2 A ) + ROUTED metal1 ( 100 200 ) ( 500 * ) ;
END NETS
END DESIGN
"""

SMALL_SDF = """(DELAYFILE
 (SDFVERSION "3.0")
 (DESIGN "top")
 (TIMESCALE 100ps)
 (CELL (CELLTYPE "top") (INSTANCE)
  (DELAY (ABSOLUTE (INTERCONNECT u1/Y u2/A (0.01:0.02:0.03) (0.04:0.05:0.06)))))
 (CELL (CELLTYPE "INVX1") (INSTANCE u1)
  (DELAY (ABSOLUTE (IOPATH A Y (0.1:0.2:0.3) (0.4::0.6))))
  (TIMINGCHECK (SETUP D (posedge CLK) (0.5:0.5:0.5))))
)
"""

RC_LINE = "n1 1 u1/Y 3 ( 2.0 0.001 ( 1.0 0.0005 u2/A ) , ( 0 0 u3/B , ( 3.0 0.002 u4/A ) ) )"


def test_osu018_liberty_known_values():
    lib = read_liberty(LIB)
    assert len(lib.cells) == 32 and lib.time_unit == "1ns"
    nand = lib.cells["NAND2X1"]
    assert nand.area == 24 and nand.pins["A"].capacitance == 0.0125 and nand.pins["B"].fall_capacitance == 0.0129035
    arcs = {a.related_pin: a for a in nand.pins["Y"].arcs}
    fall = arcs["A"].tables["cell_fall"]
    assert fall.axes == ("total_output_net_capacitance", "input_net_transition")
    # On a grid point the table value itself (row 2, column 2 of the file); between points, bilinear.
    assert fall.lookup(total_output_net_capacitance=0.0125, input_net_transition=0.18) == 0.052511
    mid = fall.lookup(total_output_net_capacitance=0.01875, input_net_transition=0.18)
    assert mid == pytest.approx((0.052511 + 0.074012) / 2)
    dff = lib.cells["DFFPOSX1"]
    assert dff.sequential and not nand.sequential and dff.pins["CLK"].is_clock
    assert {a.kind for a in dff.pins["D"].arcs} == {"setup_rising", "hold_rising"}
    assert [a.kind for a in dff.pins["Q"].arcs] == ["rising_edge"]
    # The power and logic view hw.power and models.anomaly read.
    assert lib.nom_voltage == 1.8 and nand.leakage_power == 0.0393659 and dff.leakage_power == 0.160725
    assert dff.state.kind == "ff" and dff.state.variables == ("DS0000", "P0002") and dff.state.next_state == "D"
    assert nand.state is None and nand.pins["Y"].function
    energy = {a.related_pin: a for a in nand.pins["Y"].power}
    assert set(energy) == {"A", "B"} and not dff.pins["D"].power[0].related_pin
    rise = energy["A"].rise
    assert rise.axes == ("total_output_net_capacitance", "input_transition_time")
    # clamp=True holds the table's edge value beyond its last load instead of extrapolating.
    edge = rise.lookup(total_output_net_capacitance=0.15, input_transition_time=0.06)
    assert rise.lookup(clamp=True, total_output_net_capacitance=9.0, input_transition_time=0.01) == edge
    assert rise.lookup(total_output_net_capacitance=9.0, input_transition_time=0.06) != edge


def test_small_liberty_interpolates_and_extrapolates():
    t = parse_liberty(SMALL_LIB).cells["INV"].pins["Y"].arcs[0].tables["cell_rise"]
    assert t.lookup(total_output_net_capacitance=0.05, input_net_transition=0.5) == pytest.approx(0.4)
    # Linear extrapolation beyond the last load point, as OpenSTA does.
    assert t.lookup(total_output_net_capacitance=0.2, input_net_transition=0.0) == pytest.approx(0.9)
    assert np.array_equal(t.index[0], [0.0, 0.1])


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (SMALL_LIB.replace("area : 8;", "area : 8; bogus"), 11, "':' or '('"),
        (SMALL_LIB.replace('values ("0.1, 0.3", "0.5, 0.7")', 'values ("0.1, 0.3")'), 17, "4 values"),
        (SMALL_LIB.rsplit("}", 1)[0], 24, "an attribute or group name"),
        (SMALL_LIB.replace("area : 8;", "area : x8;"), 9, "a number for area"),
    ],
)
def test_liberty_errors_name_file_line_and_expectation(text, line, expected):
    with pytest.raises(ParseError) as err:
        parse_liberty(text, "tiny.lib")
    assert err.value.path == "tiny.lib" and err.value.line == line and expected in err.value.expected


def test_def_known_values_and_errors():
    d = parse_def(SMALL_DEF, "top.def")
    assert d.name == "top" and d.units == 100 and d.die == (0, 0, 20, 10)
    assert d.components["u2"].x == 5 and d.components["u2"].orient == "FS"
    assert d.pins["a"].direction == "INPUT" and d.pins["a"].y == 3
    assert d.nets == {"a": [("PIN", "a"), ("u1", "A")], "n1": [("u1", "Y"), ("u2", "A")]}
    with pytest.raises(ParseError) as err:
        parse_def(SMALL_DEF.replace("PLACED ( 500 200 )", "PLACED ( 500 x200 )"), "top.def")
    assert (err.value.line, err.value.expected, err.value.found) == (7, "a y coordinate", "x200")
    with pytest.raises(ParseError, match="top.def:15: expected 'END'"):
        parse_def(SMALL_DEF.replace("END NETS", "ENDNETS"), "top.def")


def test_sdf_known_values_and_errors():
    s = parse_sdf(SMALL_SDF)
    assert s.design == "top" and s.timescale_ns == pytest.approx(0.1)
    (ic,) = s.interconnects
    assert (ic.src, ic.dst, ic.rise, ic.fall) == ("u1/Y", "u2/A", 0.02, 0.05)
    ((celltype, inst, io),) = s.iopaths
    assert (celltype, inst, io.src, io.dst, io.rise, io.fall) == ("INVX1", "u1", "A", "Y", 0.2, 0.6)
    ((_, _, check),) = s.checks
    assert (check.kind, check.src, check.dst, check.rise) == ("SETUP", "D", "CLK", 0.5)
    with pytest.raises(ParseError, match=r"x\.sdf:\d+: expected '\)' closing"):
        parse_sdf(SMALL_SDF.rstrip().rstrip(")"), "x.sdf")
    with pytest.raises(ParseError, match="x.sdf:4: expected a TIMESCALE"):
        parse_sdf(SMALL_SDF.replace("100ps", "fast"), "x.sdf")


def test_rc_tree_known_values_and_errors():
    net = parse_rc_line(RC_LINE)
    assert net.name == "n1" and net.driver == "u1/Y"
    assert net.parent == (-1, 0, 1, 1, 3) and net.res == (0.0, 2.0, 1.0, 0.0, 3.0)
    assert net.pins == ((0, "u1/Y"), (2, "u2/A"), (3, "u3/B"), (4, "u4/A"))
    assert sum(net.cap) == pytest.approx(0.0035)
    with pytest.raises(ParseError, match="expected 4 sinks"):
        parse_rc_line(RC_LINE.replace(" 3 (", " 4 (", 1))
    with pytest.raises(ParseError, match=r"expected 1 more '\)'"):
        parse_rc_line(RC_LINE[:-2])


def test_lef_and_netlist():
    lef = read_lef(TECH / "osu018_stdcells.lef")
    assert lef.sizes["NAND2X1"] == (2.4, 10.0)
    m2 = lef.layers["metal2"]
    assert m2.ohm_per_um() == pytest.approx(0.08 / 0.3) and m2.pf_per_um() == pytest.approx(6.57e-5)
    with pytest.raises(ParseError, match="expected SIZE w BY h"):
        parse_lef("MACRO X\n SIZE 1 2 ;\nEND X\n", "x.lef")
    nl = parse_netlist(
        "module t (a, y);\ninput [1:0] a;\noutput y;\nwire n;\nNAND2X1 u ( .A(a[0]), .B(a[1]), .Y(y) );\nendmodule\n"
    )
    assert nl.top == "t" and nl.ports == {"a[0]": "input", "a[1]": "input", "y": "output"}
    assert nl.instances["u"] == ("NAND2X1", {"A": "a[0]", "B": "a[1]", "Y": "y"})


def _mutate(text: str, data) -> str:
    """Truncate, delete, duplicate or insert a character/token somewhere in text."""
    op = data.draw(st.sampled_from(["truncate", "delete", "insert", "swap"]))
    i = data.draw(st.integers(0, len(text) - 1))
    if op == "truncate":
        return text[:i]
    if op == "delete":
        j = data.draw(st.integers(i, min(len(text), i + 12)))
        return text[:i] + text[j:]
    if op == "insert":
        return text[:i] + data.draw(st.sampled_from(list('(){};:,"\\x 1.5e-3 - + END /*'))) + text[i:]
    j = data.draw(st.integers(0, len(text) - 1))
    chars = list(text)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        (parse_liberty, SMALL_LIB),
        (parse_def, SMALL_DEF),
        (parse_sdf, SMALL_SDF),
        (parse_rc_line, RC_LINE),
        (
            parse_lef,
            "LAYER metal2\n WIDTH 0.3 ;\n RESISTANCE RPERSQ 0.08 ;\n CAPACITANCE CPERSQDIST 1e-5 ;\nEND metal2\n",
        ),
    ],
    ids=["liberty", "def", "sdf", "rc", "lef"],
)
@FUZZ
@given(data=st.data())
def test_malformed_input_raises_only_parse_error(parser, text, data):
    broken = _mutate(text, data)
    try:
        parser(broken)
    except ParseError as e:
        assert e.line >= 1 and e.expected
