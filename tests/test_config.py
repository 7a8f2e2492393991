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
    ],
)
def test_impossible_configs_name_the_problem(kwargs, words):
    with pytest.raises(ConfigError, match=words) as err:
        PEConfig(**kwargs)
    assert "\n" not in str(err.value)


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
    # a: 8 bits, q: 4 bits unsigned (+1 sign), 128 terms: 7 more bits for 129 values
    assert (cfg.product_bits, cfg.group_sum_bits, cfg.act_sum_bits) == (13, 21, 16)
