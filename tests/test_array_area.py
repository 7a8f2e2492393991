"""The replay's array area model against a whole small array synthesized with hw.synth's script."""

from bench.array_area import TOLERANCE, compare
from hw.config import ArrayConfig, PEConfig
from sim.energy import array_register_bits


def test_model_counts_the_netlists_flops_and_agrees_on_area(cache):
    """2x2 INT8 array (about 5k cells, seconds): the netlist keeps exactly the flops the model counts.

    Each PE's valid carries its row's and column's enables, so no two PEs' flags are identical and
    synthesis merges none of their flops.
    """
    cfg = ArrayConfig(PEConfig("int8", 8, "signed", "int8"), 2, 2)
    assert compare(cfg, cached_only=True) is None  # nothing synthesized in this empty cache yet
    r = compare(cfg)
    assert r["flops_synthesized"] == r["flops_model"]
    # first/last: one chain of R + C - 2 each; valid: per row, i skew + C - 1 forwarding registers
    assert r["register_bits"] == array_register_bits(cfg) and r["register_bits"]["flags"] == 2 * 2 + 3
    assert abs(r["model_over_synthesized"] - 1) <= TOLERANCE and r["met"]


def test_synth_cli_needs_both_array_dimensions(capsys):
    from hw.synth import main

    assert main(["--rows", "4"]) == 2
    err = capsys.readouterr().err
    assert err == "python -m hw.synth: error: give both --rows and --cols for an array, or neither for one PE\n"
