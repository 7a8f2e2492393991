"""Toggle counting: per-net value changes and time at 1 over a measured window of a VCD, read as a stream.

hw.power feeds it the VCD of a gate-level simulation through a pipe while Icarus writes it, so the whole
input is consumed in one pass and no VCD touches the disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class VCDError(ValueError):
    """The VCD is unreadable (no or a malformed $timescale)."""


def count_toggles(lines: Iterable[str], start_ns: float, end_ns: float) -> dict[str, tuple[int, float]]:
    """Per net bit of a VCD: (value changes with start < t < end, fraction of [start, end) spent at 1).

    Times in ns. X/Z count as 0 for the duty; changes into or out of X/Z count as toggles. The whole
    input is consumed, so a simulator writing into a pipe never blocks.
    """
    names: dict[str, list[str]] = {}
    # Scalars (nearly every net of a mapped netlist) take a fast path: value, time of last change,
    # toggles and time at 1 as plain dict entries. Vectors (ports, named registers) keep per-bit lists.
    sval: dict[str, str] = {}
    slast: dict[str, int] = {}
    stog: dict[str, int] = {}
    sones: dict[str, int] = {}
    vval: dict[str, str] = {}
    vlast: dict[str, int] = {}
    vtog: dict[str, list[int]] = {}
    vones: dict[str, list[int]] = {}
    start = end = None
    t = 0
    it = iter(lines)
    for line in it:
        c = line[:1]
        if c in "01xz":
            code = line[1:-1]
            old = sval.get(code)
            if old is None or old == c:
                continue
            if start < t < end:
                stog[code] += 1
            if old == "1":
                since, stop = max(slast[code], start), min(t, end)
                if stop > since:
                    sones[code] += stop - since
            slast[code], sval[code] = t, c
        elif c == "#":
            t = int(line[1:])
            if t >= end:
                break
        elif c == "b":
            bits, code = line[1:].split()
            old = vval.get(code)
            if old is None:
                continue
            if len(bits) < len(old):
                bits = bits.rjust(len(old), "0" if bits[0] in "01" else bits[0])
            since, stop = max(vlast[code], start), min(t, end)
            counts, ones = vtog[code], vones[code]
            for i, (x, y) in enumerate(zip(old, bits, strict=True)):
                if x != y and start < t < end:
                    counts[i] += 1
                if x == "1" and stop > since:
                    ones[i] += stop - since
            vlast[code], vval[code] = t, bits
        elif line.startswith("$timescale"):
            head = line
            while "$end" not in head:
                head += next(it)
            m = re.search(r"(\d+)\s*(s|ms|us|ns|ps|fs)", head[len("$timescale") :])
            if not m:
                raise VCDError(f"unreadable VCD timescale {head!r}")
            unit = int(m.group(1)) * {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}[m.group(2)]
            start, end = round(start_ns / unit), round(end_ns / unit)
        elif line.startswith("$var"):
            _, _, size, code, ref, *rest = line.split()
            # Escaped identifiers (yosys' `\$signal`) keep their backslash in the VCD, not in OpenSTA.
            ref = ref.removeprefix("\\")
            n = int(size)
            if rest[0].startswith("["):
                hi, lo = (int(x) for x in rest[0].strip("[]").split(":"))
                step = -1 if hi >= lo else 1
                bits = [f"{ref}[{b}]" for b in range(hi, lo + step, step)]
            else:
                bits = [ref]
            if code not in names:
                names[code] = []
                if n == 1:
                    sval[code], slast[code], stog[code], sones[code] = "x", 0, 0, 0
                else:
                    vval[code], vlast[code], vtog[code], vones[code] = "x" * n, 0, [0] * n, [0] * n
            names[code].extend(bits)
    for _ in it:
        pass
    if start is None:
        raise VCDError("the VCD has no $timescale")
    out = {}
    for code, bitnames in names.items():
        if code in sval:
            since = max(slast[code], start)
            ones = sones[code] + (end - since if sval[code] == "1" and end > since else 0)
            for net in bitnames:
                out[net] = (stog[code], ones / (end - start))
            continue
        since, width = max(vlast[code], start), len(vval[code])
        for i, net in enumerate(bitnames):
            ones = vones[code][i % width] + (end - since if vval[code][i % width] == "1" and end > since else 0)
            out[net] = (vtog[code][i % width], ones / (end - start))
    return out
