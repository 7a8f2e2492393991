"""Gate-level netlists of this project's hardware as graphs with labelled anomalies.

A design from `hw.build.emit` is synthesized by Debian yosys to the osu018 cells (the flow of hw/synth.py,
ending in `write_json`; cached under hw.cache.cache_root()/netlist/). Each cell instance is a node; each
net gives undirected edges from its driver to its loads. Two kinds of anomaly are injected, each labelled
per cell:

* **Hardware Trojans**, inserted into the mapped netlist: a trigger that compares `width` nets against
  their rare values (inverters where the rare value is 0, then an alternating NAND2/NOR2 tree, i.e. an
  AND), and a payload XOR2 spliced into a victim net that flips it when the trigger fires. They are
  inserted at gate level, not in the Verilog, because synthesis would merge or prune the trigger (it never
  fires, so ABC may simplify around it) and the inserted cells could no longer be labelled; gate-level
  insertion is also how the TrustHub gate-level benchmarks are made.
* **PyGOD-style outliers** on the clean graph: structural (cliques of `clique` random nodes, fully
  connected) and contextual (a node takes the features of the farthest of 50 random nodes).

Node features (FEATURE_NAMES): the cell type (one-hot over the library), log fan-in and fan-out, logic
depth from the inputs/flops and to the outputs/flops (normalized by the maximum), and signal probability
of the output, its switching activity 2p(1−p) and the min/max probability of the inputs, from a bit-parallel
random simulation (primary inputs uniform, `rst` held low, flops run for SIM_CYCLES clock cycles).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eda.parse.liberty import read_liberty
from eda.sta import OSU018_FIX
from hw.cache import cache_root, run_logged, staged_entry
from hw.config import ArrayConfig, PEConfig
from hw.synth import LIBERTY, yosys_map_script

# Bump when the yosys script or the JSON parsing changes, so cached netlists are rebuilt.
SCRIPT_VERSION = 1
SIM_WORDS = 64  # 64 × 64 = 4096 random vectors per clock cycle
SIM_CYCLES = 6
HELD_LOW = ("rst",)  # inputs kept at 0 in simulation: a random reset would clear every flop half the time

# Designs a dataset name can refer to: netlist-<design>-trojan / netlist-<design>-outlier.
DESIGNS: dict[str, PEConfig | ArrayConfig] = {
    "int8": PEConfig("int8", wbits=8, wformat="signed"),
    "dequant": PEConfig("dequant", wbits=4, act="int8", group=16),
    "mixpe": PEConfig("mixpe", wbits=4, act="int8", group=16),
    "array2x2": ArrayConfig(PEConfig("int8", wbits=8, wformat="signed"), rows=2, cols=2),
}
ANOMALIES = ("trojan", "outlier")


class NetlistError(RuntimeError):
    """yosys or the cell library is missing, or a netlist cannot be read; the message is one line."""


# --------------------------------------------------------------------------------------------- library


@dataclass(frozen=True)
class CellType:
    """A library cell: input and output pin names, each output's function as Python code over numpy words
    (`~ & | ^`, input pins by name), and for flip-flops/latches the next-state function."""

    name: str
    inputs: tuple[str, ...]
    outputs: dict[str, str]
    next_state: str | None = None

    @property
    def sequential(self) -> bool:
        return self.next_state is not None


def _to_python(expr: str) -> str:
    """A Liberty boolean function ("(!((A B)+C))", space or * for AND) as a Python bitwise expression."""
    tokens = re.findall(r"[A-Za-z_]\w*|[!()+^*&|']", expr)
    out: list[str] = []
    for tok in tokens:
        starts_operand = tok[0].isalpha() or tok[0] == "_" or tok in ("(", "!")
        if starts_operand and out and (out[-1][0].isalnum() or out[-1][0] == "_" or out[-1] == ")"):
            out.append("&")  # juxtaposition is AND
        out.append({"!": "~", "+": "|", "*": "&"}.get(tok, tok))
    return " ".join(out)


@functools.cache
def library(path: Path = LIBERTY) -> dict[str, CellType]:
    """Every cell of a Liberty file, by name."""
    if not path.exists():
        raise NetlistError(f"liberty file {path} not found: {OSU018_FIX}")
    cells = {}
    for name, cell in read_liberty(path).cells.items():
        # An ff/latch output's function names a state variable: IQ is the state, IQN its complement.
        state_vars = dict(zip(cell.state.variables, ("STATE", "~STATE"), strict=False)) if cell.state else {}
        next_state = _to_python(cell.state.next_state) if cell.state and cell.state.next_state else None
        inputs = tuple(p.name for p in cell.pins.values() if p.direction == "input")
        outputs = {
            p.name: state_vars.get(p.function.strip(), _to_python(p.function.strip()))
            for p in cell.pins.values()
            if p.direction and p.direction != "input" and p.function
        }
        cells[name] = CellType(name, inputs, outputs, next_state)
    return cells


# --------------------------------------------------------------------------------------------- netlists


@dataclass
class Netlist:
    """A flat gate-level netlist. Nets are ints; CONST0/CONST1 are the constant nets.

    types[i], ins[i] (input pin → net) and outs[i] (output pin → net) describe cell i; primary_inputs maps
    an input port bit name to its net; primary_outputs is the set of nets read by output ports."""

    types: list[str]
    ins: list[dict[str, int]]
    outs: list[dict[str, int]]
    primary_inputs: dict[str, int]
    primary_outputs: set[int]
    next_net: int
    labels: list[int] = field(default_factory=list)

    CONST0 = -1
    CONST1 = -2

    def add_cell(self, kind: str, ins: dict[str, int]) -> int:
        """Append an anomalous cell of library type `kind` driving a fresh net; return that net."""
        net = self.next_net
        self.next_net += 1
        cell = library()[kind]
        self.types.append(kind)
        self.ins.append(ins)
        self.outs.append({next(iter(cell.outputs)): net})
        self.labels.append(1)
        return net

    def copy(self) -> Netlist:
        return Netlist(
            list(self.types),
            [dict(d) for d in self.ins],
            [dict(d) for d in self.outs],
            dict(self.primary_inputs),
            set(self.primary_outputs),
            self.next_net,
            list(self.labels),
        )


def synthesize_netlist(cfg: PEConfig | ArrayConfig) -> Path:
    """The cached yosys JSON netlist (osu018 cells) of a design; synthesizes it on first use."""
    from hw.build import design_name, emit

    text, _ = emit(cfg)
    top = design_name(cfg)
    key = hashlib.sha256(f"{text}\0{SCRIPT_VERSION}".encode()).hexdigest()[:12]
    final = cache_root() / "netlist" / f"{top}-{key}"
    if (final / "result.json").exists():
        return final / "netlist.json"
    yosys = shutil.which("yosys")
    if yosys is None:
        raise NetlistError("yosys not found on PATH: run 'make setup' or apt-get install yosys")
    library()  # fail early, with the fix, if the cell library is missing
    with staged_entry(final) as work:
        t0 = time.perf_counter()
        (work / "design.v").write_text(text)
        (work / "netlist.ys").write_text(yosys_map_script(top, "write_json netlist.json"))
        run_logged([yosys, "-q", "-s", "netlist.ys"], work / "yosys.log", work, NetlistError)
        summary = {"top": top, "config": cfg.as_dict(), "seconds": round(time.perf_counter() - t0, 3)}
        (work / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return final / "netlist.json"


def read_netlist(path: Path, top: str | None = None) -> Netlist:
    """Parse a yosys `write_json` netlist mapped to the library's cells (a flat top module)."""
    try:
        doc = json.loads(Path(path).read_text())
        modules = doc["modules"]
        name = top or next(n for n, m in modules.items() if m.get("attributes", {}).get("top"))
        module = modules[name]
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise NetlistError(f"{path} is not a flat yosys JSON netlist ({e}): write it with 'write_json'") from e
    lib = library()
    consts = {"0": Netlist.CONST0, "1": Netlist.CONST1, "x": Netlist.CONST0, "z": Netlist.CONST0}

    def net(bit: int | str) -> int:
        return consts[bit] if isinstance(bit, str) else bit

    nl = Netlist([], [], [], {}, set(), 0)
    top_net = 0
    for port, info in module["ports"].items():
        for i, bit in enumerate(info["bits"]):
            if info["direction"] == "input":
                nl.primary_inputs[f"{port}[{i}]"] = net(bit)
            else:
                nl.primary_outputs.add(net(bit))
            top_net = max(top_net, bit if isinstance(bit, int) else 0)
    for cname, cell in module["cells"].items():
        kind = cell["type"]
        if kind not in lib:
            raise NetlistError(f"cell {cname} has type {kind}, which is not in {LIBERTY}: map the design with abc")
        lt = lib[kind]
        conns = {pin: net(bits[0]) for pin, bits in cell["connections"].items()}
        nl.types.append(kind)
        nl.ins.append({p: conns[p] for p in lt.inputs if p in conns})
        nl.outs.append({p: conns[p] for p in lt.outputs if p in conns})
        nl.labels.append(0)
        top_net = max([top_net, *(b for b in conns.values())])
    nl.next_net = top_net + 1
    return nl


# --------------------------------------------------------------------------------------------- analysis


def _drivers(nl: Netlist) -> dict[int, int]:
    return {n: i for i, outs in enumerate(nl.outs) for n in outs.values()}


def _loads(nl: Netlist) -> dict[int, list[int]]:
    loads: dict[int, list[int]] = {}
    for i, ins in enumerate(nl.ins):
        for n in ins.values():
            loads.setdefault(n, []).append(i)
    return loads


def _comb_order(nl: Netlist) -> list[int]:
    """Combinational cells in topological order (flip-flop outputs and primary inputs are sources)."""
    lib = library()
    drivers = _drivers(nl)
    comb = [i for i, t in enumerate(nl.types) if not lib[t].sequential]
    pending = {
        i: sum(1 for n in nl.ins[i].values() if n in drivers and not lib[nl.types[drivers[n]]].sequential) for i in comb
    }
    loads = _loads(nl)
    ready = [i for i in comb if pending[i] == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(i)
        for n in nl.outs[i].values():
            for j in loads.get(n, ()):
                if j in pending:
                    pending[j] -= 1
                    if pending[j] == 0:
                        ready.append(j)
    if len(order) != len(comb):
        raise NetlistError("the netlist has a combinational loop")
    return order


def simulate(nl: Netlist, seed: int, words: int = SIM_WORDS, cycles: int = SIM_CYCLES) -> dict[int, float]:
    """Signal probability of every net (fraction of 1s) under uniform random primary inputs.

    64·words vectors run in parallel for `cycles` clock cycles from a random flop state; probabilities are
    averaged over the last half of the cycles, so flops have settled into their input-driven behaviour."""
    lib = library()
    rng = np.random.default_rng(seed)
    order = _comb_order(nl)
    seq = [i for i, t in enumerate(nl.types) if lib[t].sequential]
    funcs = {k: {p: compile(f, k, "eval") for p, f in c.outputs.items()} for k, c in lib.items()}
    nexts = {k: compile(c.next_state, k, "eval") for k, c in lib.items() if c.sequential}
    zeros = np.zeros(words, dtype=np.uint64)
    ones = ~zeros
    state = {i: rng.integers(0, 2**64, words, dtype=np.uint64) for i in seq}
    counts: dict[int, int] = {}
    kept = 0
    for cycle in range(cycles):
        val = {Netlist.CONST0: zeros, Netlist.CONST1: ones}
        for name, n in nl.primary_inputs.items():
            held = name.split("[")[0] in HELD_LOW
            val[n] = zeros if held else rng.integers(0, 2**64, words, dtype=np.uint64)
        for i in seq:
            for p, n in nl.outs[i].items():
                val[n] = eval(funcs[nl.types[i]][p], {}, {"STATE": state[i]})  # noqa: S307 (library code)
        for i in order:
            env = {p: val.get(n, zeros) for p, n in nl.ins[i].items()}
            for p, n in nl.outs[i].items():
                val[n] = eval(funcs[nl.types[i]][p], {}, env)  # noqa: S307
        for i in seq:
            env = {p: val.get(n, zeros) for p, n in nl.ins[i].items()}
            state[i] = eval(nexts[nl.types[i]], {}, env)  # noqa: S307
        if cycle >= cycles // 2:
            kept += 1
            for n, v in val.items():
                counts[n] = counts.get(n, 0) + int(np.unpackbits(v.view(np.uint8)).sum())
    total = kept * words * 64
    return {n: c / total for n, c in counts.items()}


def _depths(nl: Netlist) -> tuple[np.ndarray, np.ndarray]:
    """(logic depth from primary inputs / flops, depth to primary outputs / flops) of every cell, in cells."""
    lib = library()
    order = _comb_order(nl)
    drivers = _drivers(nl)
    loads = _loads(nl)
    fwd = np.zeros(len(nl.types))
    for i in order:
        srcs = [drivers[n] for n in nl.ins[i].values() if n in drivers]
        fwd[i] = 1 + max((fwd[j] for j in srcs if not lib[nl.types[j]].sequential), default=0)
    back = np.zeros(len(nl.types))
    for i in reversed(order):
        sinks = [j for n in nl.outs[i].values() for j in loads.get(n, ())]
        back[i] = 1 + max((back[j] for j in sinks if not lib[nl.types[j]].sequential), default=0)
    return fwd, back


def feature_names() -> list[str]:
    return [f"type_{k}" for k in library()] + [
        "log_fanin", "log_fanout", "depth", "depth_to_output", "prob", "switching", "min_in_prob", "max_in_prob",
        "sequential", "drives_output",
    ]  # fmt: skip


def node_features(nl: Netlist, probs: dict[int, float]) -> np.ndarray:
    """(cells, len(feature_names())) float32 features, see the module docstring."""
    lib = library()
    kinds = {k: i for i, k in enumerate(lib)}
    loads = _loads(nl)
    fwd, back = _depths(nl)
    x = np.zeros((len(nl.types), len(kinds) + 10), dtype=np.float32)
    o = len(kinds)
    for i, kind in enumerate(nl.types):
        x[i, kinds[kind]] = 1
        ins = [n for n in nl.ins[i].values() if n >= 0]
        outs = list(nl.outs[i].values())
        fanout = sum(len(loads.get(n, ())) + (n in nl.primary_outputs) for n in outs)
        p = probs.get(outs[0], 0.0) if outs else 0.0
        pin = [probs.get(n, 0.0) for n in nl.ins[i].values()] or [0.0]
        x[i, o : o + 10] = [
            np.log1p(len(ins)), np.log1p(fanout), fwd[i] / max(1, fwd.max()), back[i] / max(1, back.max()),
            p, 2 * p * (1 - p), min(pin), max(pin), lib[kind].sequential, any(n in nl.primary_outputs for n in outs),
        ]  # fmt: skip
    return x


def edges(nl: Netlist) -> np.ndarray:
    """(2, E) int64 undirected edges (both directions, no duplicates, no self-loops) from net drivers to loads."""
    drivers = _drivers(nl)
    pairs = {(drivers[n], j) for j, ins in enumerate(nl.ins) for n in ins.values() if n in drivers and drivers[n] != j}
    e = np.array(sorted(pairs | {(b, a) for a, b in pairs}), dtype=np.int64).reshape(-1, 2)
    return e.T.copy()


# --------------------------------------------------------------------------------------------- anomalies


def _comb_fanout_cells(nl: Netlist, net: int, loads: dict[int, list[int]]) -> set[int]:
    """Cells reachable from `net` through combinational cells (the cells whose value the net can change)."""
    lib = library()
    seen: set[int] = set()
    stack = list(loads.get(net, ()))
    while stack:
        j = stack.pop()
        if j in seen:
            continue
        seen.add(j)
        if not lib[nl.types[j]].sequential:
            stack.extend(k for n in nl.outs[j].values() for k in loads.get(n, ()))
    return seen


def insert_trojan(nl: Netlist, probs: dict[int, float], width: int, rng: np.random.Generator) -> list[int]:
    """Insert one Trojan in place: a `width`-input rare-value trigger and an XOR payload; return its cells.

    Trigger inputs are drawn from the 10% of combinational nets with the rarest value (probability nearest 0
    or 1, measured before any insertion); the victim is a random combinational net that cannot reach a
    trigger input combinationally (so no loop is formed) and is not an output port."""
    lib = library()
    drivers = _drivers(nl)
    loads = _loads(nl)
    comb_nets = [n for n, d in drivers.items() if not lib[nl.types[d]].sequential and n in probs and n in loads]
    rarity = np.array([min(probs[n], 1 - probs[n]) for n in comb_nets])
    pool = [comb_nets[i] for i in np.argsort(rarity, kind="stable")[: max(width, len(comb_nets) // 10)]]
    taps = [pool[i] for i in rng.choice(len(pool), size=width, replace=False)]
    first = len(nl.types)
    # The comparator: each tap at its rare value, then AND-reduced by alternating NAND2/NOR2 levels.
    level = [n if probs[n] < 0.5 else nl.add_cell("INVX1", {"A": n}) for n in taps]
    inverted = False
    while len(level) > 1:
        gate = "NOR2X1" if inverted else "NAND2X1"
        nxt = [nl.add_cell(gate, {"A": level[i], "B": level[i + 1]}) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1] if inverted else nl.add_cell("INVX1", {"A": level[-1]}))
        level, inverted = nxt, not inverted
    trigger = nl.add_cell("INVX1", {"A": level[0]}) if inverted else level[0]
    # The payload: victim net -> XOR(victim, trigger) -> the victim's former loads.
    tap_drivers = {drivers[n] for n in taps}
    candidates = [n for n in comb_nets if n not in nl.primary_outputs and n not in taps]
    for n in rng.permutation(candidates):
        if not _comb_fanout_cells(nl, int(n), loads) & tap_drivers:
            victim = int(n)
            break
    else:
        raise NetlistError("no victim net for a Trojan payload that avoids a combinational loop")
    victim_loads = loads[victim]
    out = nl.add_cell("XOR2X1", {"A": victim, "B": trigger})
    for j in victim_loads:
        nl.ins[j] = {p: (out if n == victim else n) for p, n in nl.ins[j].items()}
    return list(range(first, len(nl.types)))


def insert_trojans(nl: Netlist, ratio: float, seed: int, widths: tuple[int, int] = (4, 16)) -> Netlist:
    """A copy of `nl` with Trojans of random trigger width in [widths] until `ratio` of the cells are Trojan."""
    rng = np.random.default_rng(seed)
    probs = simulate(nl, seed)
    out = nl.copy()
    while sum(out.labels) < ratio * len(out.types):
        insert_trojan(out, probs, int(rng.integers(widths[0], widths[1] + 1)), rng)
    return out


def inject_outliers(
    x: np.ndarray, edge_index: np.ndarray, ratio: float, seed: int, clique: int = 10, candidates: int = 50
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyGOD-style outliers: (features, undirected edges, labels) with ratio/2 of the nodes in structural
    cliques of `clique` nodes and ratio/2 contextual (features copied from the farthest of `candidates`)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    half = max(clique, round(ratio * n / 2))
    m = max(1, round(half / clique))
    chosen = rng.choice(n, size=m * clique + half, replace=False)
    structural, contextual = chosen[: m * clique], chosen[m * clique :]
    new_edges = [(a, b) for group in structural.reshape(m, clique) for a in group for b in group if a != b]
    pairs = {tuple(p) for p in edge_index.T.tolist()} | set(map(tuple, np.array(new_edges).tolist()))
    x = x.copy()
    original = x.copy()
    for i in contextual:
        pool = rng.choice(n, size=candidates, replace=False)
        far = pool[np.argmax(((original[pool] - original[i]) ** 2).sum(1))]
        x[i] = original[far]
    y = np.zeros(n, dtype=np.int64)
    y[chosen] = 1
    return x, np.array(sorted(pairs), dtype=np.int64).T.copy(), y


# --------------------------------------------------------------------------------------------- datasets


def dataset_names() -> list[str]:
    return [f"netlist-{d}-{a}" for d in DESIGNS for a in ANOMALIES]


def netlist_graph(design: str, anomaly: str, seed: int = 0, ratio: float = 0.05):
    """A torch_geometric Data (x, edge_index, y, feature_names, cell_types) of a design with anomalies.

    design: a key of DESIGNS; anomaly: "trojan" or "outlier"; ratio: target fraction of anomalous nodes;
    seed: which Trojans/outliers are injected (the netlist itself is fixed)."""
    import torch
    from torch_geometric.data import Data

    if design not in DESIGNS or anomaly not in ANOMALIES:
        raise NetlistError(f"unknown netlist dataset netlist-{design}-{anomaly}: choose one of {dataset_names()}")
    nl = read_netlist(synthesize_netlist(DESIGNS[design]))
    if anomaly == "trojan":
        nl = insert_trojans(nl, ratio, seed)
        x, ei, y = node_features(nl, simulate(nl, seed + 1)), edges(nl), np.array(nl.labels, dtype=np.int64)
    else:
        x, ei, y = inject_outliers(node_features(nl, simulate(nl, seed + 1)), edges(nl), ratio, seed)
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(ei),
        y=torch.from_numpy(y),
        name=f"netlist-{design}-{anomaly}",
        feature_names=feature_names(),
        cell_types=list(nl.types),
    )
