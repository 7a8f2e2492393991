"""The workload format: which GEMMs a model runs, at which precisions, optionally with exact operands.

A workload is a JSON manifest, written and read only through this module:

    {"format": 1, "model": "llama-2-7b", "meta": {...}, "ops": [{"kind": "linear", ...}, ...],
     "tensors": "llama.safetensors"}

`meta` is free-form (the settings that produced the workload: phase lengths, batch, ...). `ops` is
the hardware-independent list of GEMMs, each Y = X (m x k) @ W (k x n) as in sim/gemm.py: m counts
tokens (activation rows), n output features, k input features (the reduction). Every op field is
required in a file (save() writes them all), so a missing field is always an error. `tensors`
(optional) names a .safetensors file, relative to the manifest's folder, holding exact port-level
operands of some linear / MoE ops for bit-exact replay; for an op named X:

    X.act   (m, k)       activation port values: INT8 two's complement in bits 7:0 (0..255) or
                         FP16 bits (0..65535, no Inf/NaN); dtype int64, int16 (read as uint16 bits)
                         or uint16
    X.q     (k, n)       weight port values, 0 <= q < 2**wbits (two's complement bits if signed)
    X.scale (k/group, n) unsigned 16-bit scales S
    X.zero  (k/group, n) zero points, 0 <= z < 2**wbits (all 0 for signed weights)

An op with repeat > 1 replays the same operands for every repetition. Any error in a file raises
WorkloadError with one line naming the file, the op (index and name) and the field.

The workload writers (`sim.workload builtin`, `models.export`) write a folder, `-o DIR`: DIR/workload.json and,
with operands, DIR/workload.safetensors; every reader takes the folder or the manifest itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import numpy as np

from hw.config import ACT_KINDS, WEIGHT_BITS, WEIGHT_FORMATS
from sim.cli import OneLineParser, OutputError, add_output_arguments, check_output
from sim.files import atomic_write, staged_folder

if TYPE_CHECKING:
    from sim.gemm import GemmOperands

FORMAT_VERSION = 1
# The manifest's name in a workload folder (`-o DIR` of the workload writers).
WORKLOAD_FILE = "workload.json"
KV_BITS = (2, 4, 8, 16)
TENSOR_PARTS = ("act", "q", "scale", "zero")
ACT_DTYPES = ("int64", "int16", "uint16")
SCALE_BYTES = 2


class WorkloadError(ValueError):
    """A malformed workload or bad request; the message is one line naming the file, op and field."""


class _FieldError(Exception):
    """One bad field of one op; the caller adds the file and op to make a WorkloadError."""

    def __init__(self, name: str, value: Any, expected: str) -> None:
        super().__init__(f"field '{name}' is {_show(value)}, expected {expected}")


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int) -> None:
    if not _is_int(value) or value < low:
        raise _FieldError(name, value, f"an integer >= {low}")


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices or isinstance(value, bool):
        raise _FieldError(name, value, "one of " + ", ".join(str(c) for c in choices))


@dataclass(frozen=True, kw_only=True)
class Op:
    """One GEMM, Y = X (m x k) @ W (k x n), run `repeat` times (times `heads` for attention).

    name: unique within the workload (also the prefix of its replay tensors).
    m: rows of X and Y (tokens). n: columns of W and Y (output features). k: the reduction length
        (input features). act: activation type of X, "int8" or "fp16". repeat: identical instances
        (e.g. decoder layers x decode steps), >= 1.
    """

    kind: ClassVar[str] = ""
    name: str
    m: int
    n: int
    k: int
    act: str = "int8"
    repeat: int = 1

    def check(self) -> None:
        """Raise _FieldError for the first bad field."""
        if not isinstance(self.name, str) or not self.name:
            raise _FieldError("name", self.name, "a non-empty string")
        for dim in ("m", "n", "k", "repeat"):
            _check_int(dim, getattr(self, dim), 1)
        _check_choice("act", self.act, ACT_KINDS)

    @property
    def instances(self) -> int:
        """Independent GEMMs this op stands for."""
        return self.repeat

    @property
    def macs(self) -> int:
        """Multiply-accumulates over all instances."""
        return self.m * self.n * self.k * self.instances

    def weight_bits(self) -> int:
        """Bits of quantized weights, scales and zero points over all instances (0 for attention)."""
        return 0

    def kv_bits_total(self) -> int:
        """Bits of KV cache read over all instances (0 for linear ops)."""
        return 0

    def precision(self) -> str:
        """Short precision label for tables, e.g. w4u/g128/aint8."""
        return f"a{self.act}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


UNEVEN_POLICIES = ("error", "divisor")


def fit_group(group: int, k: int) -> int:
    """The largest group size <= `group` that divides k (`group` itself when it divides k).

    The "divisor" policy for layers whose k the requested group does not divide (e.g. 86 for k = 688
    at group 128), shared by quantization (models.quant) and shape-only workloads.
    """
    return group if k % group == 0 else max(d for d in range(1, min(group, k) + 1) if k % d == 0)


@dataclass(frozen=True, kw_only=True)
class Linear(Op):
    """An mpGEMM with quantized weights W[k, n] = S[k // group, n] * (Q[k, n] - Z[k // group, n]).

    wbits: bits per weight (2, 3, 4, 8). group: consecutive k sharing one scale and zero point
    (weights per scale; must divide k; group = k is per-channel). wformat: "unsigned" (with a zero
    point) or "signed" (two's complement, no zero point).
    """

    kind: ClassVar[str] = "linear"
    wbits: int = 4
    group: int = 128
    wformat: str = "unsigned"

    def check(self) -> None:
        super().check()
        _check_choice("wbits", self.wbits, WEIGHT_BITS)
        _check_int("group", self.group, 1)
        if self.k % self.group:
            raise _FieldError("group", self.group, f"a divisor of k={self.k}")
        _check_choice("wformat", self.wformat, WEIGHT_FORMATS)

    def weight_bits(self) -> int:
        # Per group and column: a 16-bit scale, plus a wbits zero point for unsigned weights.
        meta = SCALE_BYTES * 8 + (self.wbits if self.wformat == "unsigned" else 0)
        return (self.k * self.n * self.wbits + self.k // self.group * self.n * meta) * self.repeat

    def precision(self) -> str:
        return f"w{self.wbits}{self.wformat[0]}/g{self.group}/a{self.act}"


@dataclass(frozen=True, kw_only=True)
class MoeExpert(Linear):
    """One expert's GEMM of a mixture-of-experts layer; m is the number of tokens routed to it.

    expert: the expert's index in its layer (>= 0). The other fields are those of a linear op.
    """

    kind: ClassVar[str] = "moe_expert"
    expert: int = 0

    @property
    def routed_tokens(self) -> int:
        return self.m

    def check(self) -> None:
        super().check()
        _check_int("expert", self.expert, 0)


@dataclass(frozen=True, kw_only=True)
class Attention(Op):
    """An attention GEMM of one layer, for `heads` query heads (each its own GEMM), `repeat` times.

    context: tokens in the KV cache before eviction. kept_tokens: tokens kept after eviction
    (<= context); they are the KV side of the GEMM (n of QK^T, k of PV). kv_bits: bits per cached
    K/V element (2, 4, 8; 16 is FP16). heads: query heads. kv_heads: K/V heads (grouped-query
    attention shares one K/V head among heads / kv_heads query heads; must divide heads).
    """

    kv_bits: int = 16
    kept_tokens: int = 1
    context: int = 1
    heads: int = 1
    kv_heads: int = 1

    def check(self) -> None:
        super().check()
        _check_choice("kv_bits", self.kv_bits, KV_BITS)
        _check_int("context", self.context, 1)
        _check_int("kept_tokens", self.kept_tokens, 1)
        if self.kept_tokens > self.context:
            raise _FieldError("kept_tokens", self.kept_tokens, f"at most context={self.context}")
        _check_int("heads", self.heads, 1)
        _check_int("kv_heads", self.kv_heads, 1)
        if self.heads % self.kv_heads:
            raise _FieldError("kv_heads", self.kv_heads, f"a divisor of heads={self.heads}")

    @property
    def instances(self) -> int:
        return self.heads * self.repeat

    def kv_bits_total(self) -> int:
        # The cache operand (n x k elements, both kinds) is read once per K/V head, not per query head.
        return self.n * self.k * self.kv_heads * self.kv_bits * self.repeat

    def precision(self) -> str:
        return f"kv{self.kv_bits}/a{self.act}"


@dataclass(frozen=True, kw_only=True)
class AttnQK(Attention):
    """Scores Q K^T: m queries (tokens), k = head_dim, n = kept_tokens (keys)."""

    kind: ClassVar[str] = "attn_qk"

    def check(self) -> None:
        super().check()
        if self.n != self.kept_tokens:
            raise _FieldError("n", self.n, f"kept_tokens={self.kept_tokens} (one column per key)")


@dataclass(frozen=True, kw_only=True)
class AttnPV(Attention):
    """Weighted values P V: m queries (tokens), k = kept_tokens (values), n = head_dim."""

    kind: ClassVar[str] = "attn_pv"

    def check(self) -> None:
        super().check()
        if self.k != self.kept_tokens:
            raise _FieldError("k", self.k, f"kept_tokens={self.kept_tokens} (one term per value)")


OP_CLASSES: dict[str, type[Op]] = {cls.kind: cls for cls in (Linear, AttnQK, AttnPV, MoeExpert)}
OP_KINDS = tuple(OP_CLASSES)


@dataclass(frozen=True)
class Totals:
    """Sums over all ops x instances, so weights and KV are counted once per use (traffic if every
    instance fetches its operands), not once per model.

    macs: multiply-accumulates. weight_params: weight elements (k x n) of linear / expert ops.
    weight_bytes: quantized weights plus 16-bit scales and (unsigned) zero points. kv_bytes: K/V
    cache elements read by attention ops at kv_bits each. gemms: GEMM instances (ops x repeat x heads).
    """

    macs: int
    weight_params: int
    weight_bytes: float
    kv_bytes: float
    gemms: int


@dataclass
class Workload:
    """A model's GEMMs. tensors maps op names to exact port-level operands for replay (optional).

    model: the model's name. ops: the GEMMs, in execution order. meta: free-form settings (JSON).
    """

    model: str
    ops: list[Op]
    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, GemmOperands] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate(f"workload '{self.model}'")

    def validate(self, source: str) -> None:
        """Check every op and operand; errors name `source` (the file), the op and the field."""
        if not isinstance(self.model, str) or not self.model:
            raise WorkloadError(f"{source}: field 'model' is {_show(self.model)}, expected a non-empty string")
        if not isinstance(self.meta, dict):
            raise WorkloadError(f"{source}: field 'meta' is {_show(self.meta)}, expected a dict")
        seen: set[str] = set()
        for index, op in enumerate(self.ops):
            try:
                op.check()
                if op.name in seen:
                    raise _FieldError("name", op.name, "a unique name")
            except _FieldError as e:
                raise WorkloadError(f"{source}: op {index} '{op.name}': {e}") from None
            seen.add(op.name)
        by_name = {op.name: (index, op) for index, op in enumerate(self.ops)}
        for name, ops in self.tensors.items():
            if name not in by_name:
                raise WorkloadError(f"{source}: tensors for {_show(name)}, expected the name of an op")
            index, op = by_name[name]
            arrays = {part: getattr(ops, part) for part in TENSOR_PARTS}
            _check_operands(source, index, op, arrays, ops.group)

    def op(self, name: str) -> Op:
        """The op called `name`."""
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def operands(self, op: Op | str) -> GemmOperands:
        """The exact operands of an op (by op or name); KeyError when the workload has none for it."""
        return self.tensors[op if isinstance(op, str) else op.name]

    def totals(self) -> Totals:
        """MACs, weight elements and bytes, KV bytes and GEMM count, summed over ops x instances."""
        return Totals(
            macs=sum(op.macs for op in self.ops),
            weight_params=sum(op.k * op.n * op.repeat for op in self.ops if isinstance(op, Linear)),
            weight_bytes=sum(op.weight_bits() for op in self.ops) / 8,
            kv_bytes=sum(op.kv_bits_total() for op in self.ops) / 8,
            gemms=sum(op.instances for op in self.ops),
        )

    def as_dict(self, tensors: str | None = None) -> dict[str, Any]:
        """The JSON manifest; tensors is the .safetensors file name relative to the manifest."""
        manifest = {"format": FORMAT_VERSION, "model": self.model, "meta": self.meta}
        manifest["ops"] = [op.as_dict() for op in self.ops]
        if tensors is not None:
            manifest["tensors"] = tensors
        return manifest

    def save(self, path: str | os.PathLike) -> None:
        """Write the manifest to `path` and, if there are operands, `<stem>.safetensors` beside it.

        Both are written atomically (temporary file in the same folder, then os.replace), the
        tensors first, so a manifest never names a missing or half-written tensor file.
        """
        path = Path(path)
        self.validate(str(path))
        tensors = path.with_suffix(".safetensors").name if self.tensors else None
        try:
            text = json.dumps(self.as_dict(tensors), indent=1) + "\n"
        except (TypeError, ValueError) as e:
            raise WorkloadError(f"{path}: field 'meta' cannot be written as JSON ({e})") from None
        if self.tensors:
            save_tensors(path.parent / tensors, self.tensors)
        atomic_write(path, text)


def save_tensors(path: str | os.PathLike, operands: dict[str, GemmOperands]) -> None:
    """Write exact operands (op name -> GemmOperands) as a .safetensors file, atomically.

    Stored compactly: act as uint16 port bits, q and zero as uint8, scale as uint16. Workload.save
    checks the operands against their ops first; here a value that does not fit its dtype is refused.
    """
    from safetensors.numpy import save_file

    dtypes = {"act": np.uint16, "q": np.uint8, "scale": np.uint16, "zero": np.uint8}
    arrays: dict[str, np.ndarray] = {}
    for name, ops in operands.items():
        for part, dtype in dtypes.items():
            values = np.asarray(getattr(ops, part))
            stored = np.ascontiguousarray(values.astype(dtype))
            if not np.array_equal(stored, values):
                raise WorkloadError(f"{path}: tensor '{name}.{part}' has values outside 0..{np.iinfo(dtype).max}")
            arrays[f"{name}.{part}"] = stored
    atomic_write(path, lambda tmp: save_file(arrays, tmp))


def _check_operands(source: str, index: int, op: Op, arrays: dict[str, np.ndarray], group: int) -> None:
    """Shapes, dtypes and value ranges of one op's replay tensors."""

    def fail(part: str, what: str, expected: str) -> NoReturn:
        raise WorkloadError(f"{source}: op {index} '{op.name}': tensor '{op.name}.{part}' {what}, expected {expected}")

    if not isinstance(op, Linear):
        fail("act", f"given for an {op.kind} op", "tensors only for linear and moe_expert ops")
    if group != op.group:
        fail("scale", f"has group {group}", f"the op's group {op.group}")
    groups = op.k // op.group
    shapes = {"act": (op.m, op.k), "q": (op.k, op.n), "scale": (groups, op.n), "zero": (groups, op.n)}
    wmax = (1 << op.wbits) - 1
    zmax = 0 if op.wformat == "signed" else wmax
    limits = {"act": 255 if op.act == "int8" else 0xFFFF, "q": wmax, "scale": 0xFFFF, "zero": zmax}
    for part in TENSOR_PARTS:
        a = np.asarray(arrays[part])
        if a.dtype.kind not in "iu":
            fail(part, f"has dtype {a.dtype}", "an integer dtype")
        if part == "act" and a.dtype.name not in ACT_DTYPES:
            fail(part, f"has dtype {a.dtype}", "int64, int16 or uint16")
        if a.shape != shapes[part]:
            fail(part, f"has shape {a.shape}", f"{shapes[part]} for m={op.m}, n={op.n}, k={op.k}, group={op.group}")
        if a.dtype == np.int16:
            a = a.view(np.uint16)
        if a.size and (a.min() < 0 or a.max() > limits[part]):
            fail(part, f"has values {int(a.min())}..{int(a.max())}", f"0..{limits[part]}")
        if part == "act" and op.act == "fp16" and a.size and (((a.astype(np.int64) >> 10) & 0x1F) == 0x1F).any():
            fail(part, "has FP16 Inf/NaN", "finite FP16 values")


def _parse_op(source: str, index: int, raw: Any) -> Op:
    label = f"{source}: op {index}"
    if not isinstance(raw, dict):
        raise WorkloadError(f"{label}: is {_show(raw)}, expected a JSON object")
    name = raw.get("name")
    label += f" '{name}'" if isinstance(name, str) else ""
    try:
        kind = raw.get("kind")
        if kind not in OP_CLASSES:
            raise _FieldError("kind", kind, "one of " + ", ".join(OP_KINDS))
        cls = OP_CLASSES[kind]
        names = [f.name for f in fields(cls)]
        for key in raw:
            if key != "kind" and key not in names:
                raise _FieldError(key, raw[key], f"no such field (a {kind} op has {', '.join(names)})")
        for key in names:
            if key not in raw:
                raise WorkloadError(f"{label}: field '{key}' is missing, expected it in every {kind} op")
        op = cls(**{key: raw[key] for key in names})
        op.check()
    except _FieldError as e:
        raise WorkloadError(f"{label}: {e}") from None
    return op


def load_workload(path: str | os.PathLike) -> Workload:
    """Read and validate a workload manifest, or the workload.json of a workload folder (and its tensors, if it
    names any)."""
    path = Path(path)
    if path.is_dir():
        path = path / WORKLOAD_FILE
    source = str(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise WorkloadError(f"{source}: cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorkloadError(f"{source}: not valid JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise WorkloadError(f"{source}: top level is {_show(raw)}, expected a JSON object")
    if raw.get("format") != FORMAT_VERSION or isinstance(raw.get("format"), bool):
        raise WorkloadError(f"{source}: field 'format' is {_show(raw.get('format'))}, expected {FORMAT_VERSION}")
    allowed = ("format", "model", "meta", "ops", "tensors")
    for key in raw:
        if key not in allowed:
            raise WorkloadError(f"{source}: field '{key}' is unknown, expected only {', '.join(allowed)}")
    for key, kind, expected in (
        ("model", str, "a model name"),
        ("meta", dict, "a JSON object"),
        ("ops", list, "a list"),
    ):
        if not isinstance(raw.get(key), kind) or (kind is str and not raw[key]):
            raise WorkloadError(f"{source}: field '{key}' is {_show(raw.get(key))}, expected {expected}")
    ops: list[Op] = []
    for index, item in enumerate(raw["ops"]):
        op = _parse_op(source, index, item)
        if any(op.name == other.name for other in ops):
            raise WorkloadError(f"{source}: op {index} '{op.name}': field 'name' is repeated, expected a unique name")
        ops.append(op)
    tensors = _load_tensors(source, path, raw["tensors"], ops) if "tensors" in raw else {}
    return Workload(raw["model"], ops, raw["meta"], tensors)


def _load_tensors(source: str, path: Path, tensors: Any, ops: list[Op]) -> dict[str, GemmOperands]:
    if not isinstance(tensors, str) or not tensors or Path(tensors).is_absolute() or ".." in Path(tensors).parts:
        raise WorkloadError(
            f"{source}: field 'tensors' is {_show(tensors)}, expected a file name relative to the manifest"
        )
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from sim.gemm import GemmOperands

    tpath = path.parent / tensors
    try:
        arrays = load_file(tpath)
    except (OSError, SafetensorError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise WorkloadError(
            f"{source}: field 'tensors' is {_show(tensors)}, expected a readable .safetensors file ({reason})"
        ) from None
    tsource = str(tpath)
    by_name = {op.name: (index, op) for index, op in enumerate(ops)}
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for key, array in arrays.items():
        name, _, part = key.rpartition(".")
        if name not in by_name or part not in TENSOR_PARTS:
            raise WorkloadError(f"{tsource}: tensor {_show(key)} is unknown, expected '<op name>.act|q|scale|zero'")
        index, op = by_name[name]
        if not isinstance(op, Linear):
            raise WorkloadError(
                f"{tsource}: op {index} '{name}': tensor '{key}' given for an {op.kind} op,"
                " expected tensors only for linear and moe_expert ops"
            )
        grouped.setdefault(name, {})[part] = array
    operands = {}
    for name, parts in grouped.items():
        index, op = by_name[name]
        for part in TENSOR_PARTS:
            if part not in parts:
                raise WorkloadError(f"{tsource}: op {index} '{name}': tensor '{name}.{part}' is missing")
        _check_operands(tsource, index, op, parts, getattr(op, "group", 0))
        act = parts["act"].view(np.uint16) if parts["act"].dtype == np.int16 else parts["act"]
        ints = {part: np.asarray(parts[part]).astype(np.int64) for part in ("q", "scale", "zero")}
        operands[name] = GemmOperands(act.astype(np.int64), ints["q"], ints["scale"], ints["zero"], op.group)
    return operands


def _format_table(workload: Workload) -> str:
    header = ("#", "kind", "name", "m", "n", "k", "precision", "heads", "repeat", "MACs")
    rows = [header]
    for index, op in enumerate(workload.ops):
        heads = str(op.heads) if isinstance(op, Attention) else "-"
        rows.append(
            (
                str(index),
                op.kind,
                op.name,
                str(op.m),
                str(op.n),
                str(op.k),
                op.precision(),
                heads,
                str(op.repeat),
                f"{op.macs:.3e}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i in (1, 2, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    t = workload.totals()
    lines.append(
        f"total: {len(workload.ops)} ops, {t.gemms} GEMMs, {t.macs:.4e} MACs, {t.weight_params:.4e} weight elements, "
        f"{t.weight_bytes / 2**30:.3f} GiB weights, {t.kv_bytes / 2**30:.3f} GiB KV cache read"
        + (f", exact operands for {len(workload.tensors)} ops" if workload.tensors else "")
    )
    return "\n".join(lines)


def save_workload_folder(workload: Workload, out: Path) -> Path:
    """Write `workload` as the folder `out` (workload.json, plus workload.safetensors with operands), built in a
    staging folder and renamed into place; the manifest's path. The caller checked `out` (check_output)."""
    with staged_folder(out) as work:
        workload.save(work / WORKLOAD_FILE)
    return out / WORKLOAD_FILE


def main(argv: list[str] | None = None) -> int:
    """`show FILE|DIR [--json]` prints a workload; `builtin MODEL ... -o DIR` writes a built-in one."""
    from sim.model_shapes import MODELS, add_builtin_arguments, builtin_from_args

    parser = OneLineParser(prog="python -m sim.workload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print a workload's ops and totals")
    show.add_argument("file", help="a workload manifest, or a folder holding workload.json")
    show.add_argument("--json", action="store_true", help="print the manifest plus totals as JSON")
    builtin = sub.add_parser("builtin", help="write a shape-only workload of a known model")
    builtin.add_argument("model", help="one of " + ", ".join(MODELS))
    add_builtin_arguments(builtin)
    add_output_arguments(builtin, "workload folder to write (new, or an earlier workload's)", required=False)
    builtin.add_argument("--output", dest="out", type=Path, help=argparse.SUPPRESS)  # the old spelling
    args = parser.parse_args(argv)
    if args.command == "builtin" and args.out is None:
        builtin.error("the following arguments are required: -o/--out")
    try:
        if args.command == "show":
            workload = load_workload(args.file)
            if args.json:
                print(json.dumps({**workload.as_dict(), "totals": asdict(workload.totals())}, indent=1))
            else:
                print(_format_table(workload))
        else:
            check_output(args.out, own=WORKLOAD_FILE, force=args.force)
            workload = builtin_from_args(args.model, args)
            manifest = save_workload_folder(workload, args.out)
            t = workload.totals()
            print(f"{manifest}: {workload.model}, {len(workload.ops)} ops, {t.macs:.4e} MACs")
    except (WorkloadError, OutputError) as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"{e.filename or args.out}: {e.strerror or e}")
    return 0


if __name__ == "__main__":
    # Run the imported module's main, so that sim.model_shapes and this CLI share one WorkloadError class.
    from sim.workload import main as _main

    sys.exit(_main())
