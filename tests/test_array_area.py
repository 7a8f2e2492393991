"""The replay's array area model against a whole small array synthesized with hw.synth's script."""

from bench.array_area import TOLERANCE, compare
from hw.config import ArrayConfig, PEConfig
from sim.energy import array_register_bits


def test_model_counts_the_netlists_flops_and_agrees_on_area(cache):
    """2x2 INT8 array (about 5k cells, seconds): every flop the model counts is in the netlist.

    The only difference: PEs on one anti-diagonal see identical flags, so synthesis merges their
    out_valid flops (R + C - 1 kept of R * C), a PE-internal saving the per-PE model leaves in.
    """
    cfg = ArrayConfig(PEConfig("int8", 8, "signed", "int8"), 2, 2)
    assert compare(cfg, cached_only=True) is None  # nothing synthesized in this empty cache yet
    r = compare(cfg)
    merged = cfg.rows * cfg.cols - (cfg.rows + cfg.cols - 1)
    assert r["flops_synthesized"] == r["flops_model"] - merged
    assert r["register_bits"] == array_register_bits(cfg) and r["register_bits"]["flags"] == 3 * 2
    assert abs(r["model_over_synthesized"] - 1) <= TOLERANCE and r["met"]


def test_synth_cli_needs_both_array_dimensions(capsys):
    from hw.synth import main

    assert main(["--rows", "4"]) == 2
    err = capsys.readouterr().err
    assert err == "hw.synth: error: give both --rows and --cols for an array, or neither for one PE\n"
