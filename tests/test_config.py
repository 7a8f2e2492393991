import pytest

from hw.config import ArrayConfig, ConfigError, PEConfig


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"pe": "int8", "act": "fp16", "wbits": 8, "wformat": "signed"}, "int8 PE"),
        ({"pe": "int8", "wbits": 4}, "int8 PE"),
        ({"wbits": 5}, "weight bits 5"),
        ({"wbits": 1}, "weight bits 1"),
        ({"act": "bf16"}, "activation type"),
        ({"wformat": "nf4"}, "weight format"),
        ({"group": 0}, "group size 0"),
        ({"group": 4096}, "group size 4096"),
        ({"acc_bits": 65}, "accumulator width"),
        ({"pe": "tensorcore"}, "unknown PE"),
        ({"group_dequant": "bitserial"}, "group dequantizer"),
        ({"serial_bits": 3}, "serial bits 3"),
        ({"group": 8, "serial_bits": 1}, "group size 8 is shorter than the 16 cycles"),
        ({"group": 15, "serial_bits": 1, "act": "fp16"}, "group size 15 is shorter than the 16 cycles"),
        ({"group": 1, "serial_bits": 8}, "group size 1 is shorter than the 2 cycles"),
    ],
)
def test_impossible_configs_name_the_problem(kwargs, words):
    with pytest.raises(ConfigError, match=words) as err:
        PEConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_unknown_group_dequantizer_is_refused():
    with pytest.raises(ConfigError, match="choose serial or parallel"):
        PEConfig(group_dequant="edge")
    assert PEConfig(pe="mixpe", act="fp16", accumulate="fp32", group=8).latency == 4  # no serial rule for FP32


def test_array_dimensions_are_checked():
    with pytest.raises(ConfigError, match="rows=0"):
        ArrayConfig(PEConfig(), 0, 4)
    with pytest.raises(ConfigError, match="cols=65"):
        ArrayConfig(PEConfig(), 4, 65)


def test_default_accumulators_and_widths():
    assert PEConfig(pe="int8", wbits=8, wformat="signed").acc_bits == 32
    assert PEConfig(act="int8").acc_bits == 48
    assert PEConfig(act="fp16").acc_bits == 64
    cfg = PEConfig(wbits=4, wformat="unsigned", act="int8", group=128)
    # a: 8 bits, q - z: 4 bits unsigned (+1 sign), 128 terms: 8 more bits for 129 values
    assert (cfg.product_bits, cfg.group_sum_bits, cfg.scaled_group_bits) == (13, 21, 37)


def test_serial_group_multiplier_cycles_and_latency():
    """The serial multiplier needs 16 / serial_bits cycles per group; latency adds the group register and the add."""
    default = PEConfig()
    assert (default.group_dequant, default.serial_bits, default.dequant_cycles, default.latency) == (
        "serial",
        1,
        16,
        18,
    )
    assert PEConfig(group=16, serial_bits=1).dequant_cycles == 16  # G == N is allowed
    # groups shorter than 16 widen the default digit until the multiplier finishes within a group
    assert [PEConfig(group=g).serial_bits for g in (16, 15, 8, 4, 3, 2, 1)] == [1, 2, 2, 4, 8, 8, 16]
    assert PEConfig(group=1).latency == 3
    assert PEConfig(group_dequant="parallel").latency == 2
    assert PEConfig(pe="dequant").latency == 2 and PEConfig(pe="int8", wbits=8, wformat="signed").latency == 1
    names = {PEConfig().name(), PEConfig(group_dequant="parallel").name(), PEConfig(serial_bits=4).name()}
    assert names == {"mixpe_w4u_aint8_g128", "mixpe_w4u_aint8_g128_par", "mixpe_w4u_aint8_g128_ser4"}
