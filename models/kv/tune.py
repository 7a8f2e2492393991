"""KVTuner offline tuning: per-layer sensitivity, intra-layer Pareto pruning, inter-layer clustering, NSGA-II search.

    meter = KLMeter(model, calibration_ids(tokenizer, "default"), prefill=32)  # zoo training text, never test
    result = tune(meter, groups=2, trials=40, seed=0)
    kv = choose(result, max_bits=4.0)                            # lowest calibration KL under the budget

Sensitivity: for every layer and candidate (key bits, value bits) pair, only that layer is quantized (all others
stay at 16 bits) and the KL divergence of the next-token distribution from KV16 is measured (nats/token) through a
real prefill + token-by-token decode (`decode_logits`). Pairs dominated in (key + value bits, sensitivity) are
pruned per group; layers with similar log-sensitivity profiles are clustered (agglomerative, Ward) into groups that
share one pair, and optuna's NSGA-II searches the groups' pairs for the (average KV bits, calibration KL) front,
every trial measured with the real mixed-precision cache. The pruning runs on the group's summed sensitivities, an
additive approximation of the group's cost that KVTuner also uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.kv.config import KVConfig
from models.kv.evaluate import compare, decode_logits
from models.zoo import calibration_windows

# KVTuner's candidate (key bits, value bits) pairs; keys are the more sensitive, hence K8V4 and K4V2.
CANDIDATES = ((8, 8), (4, 8), (8, 4), (4, 4), (2, 4), (4, 2), (2, 2))
# Sensitivities below this (nats/token) count as equal when clustering log profiles (KV8 is often ~1e-7).
FLOOR = 1e-7


def calibration_ids(
    tokenizer: PreTrainedTokenizerBase, preset: str = "default", seq_len: int = 96, windows: int = 4, seed: int = 0
) -> torch.Tensor:
    """(windows, seq_len) token ids of the zoo's English and code training text."""
    return torch.stack(calibration_windows(tokenizer, seq_len, windows, preset, seed))


@dataclass
class KLMeter:
    """KL(KV16 || config) in nats/token on fixed (batch, tokens) `ids`, the first `prefill` tokens prefilled and
    the rest decoded through the cache; remembers every config it measured."""

    model: PreTrainedModel
    ids: torch.Tensor
    prefill: int
    measured: dict[KVConfig, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.prefill < self.ids.shape[1]:
            raise ValueError(f"prefill {self.prefill} must be between 1 and seq_len - 1 = {self.ids.shape[1] - 1}")
        layers = self.model.config.get_text_config(decoder=True).num_hidden_layers
        self.reference = decode_logits(self.model, self.ids, KVConfig.preset("KV16", layers), self.prefill)

    def __call__(self, kv: KVConfig) -> float:
        key = kv.with_name("")
        if key not in self.measured:
            logits = decode_logits(self.model, self.ids, kv, self.prefill)
            self.measured[key] = compare(self.reference, logits, self.ids[:, self.prefill :])["kl"]
        return self.measured[key]


def layer_sensitivity(
    meter: KLMeter,
    candidates: tuple[tuple[int, int], ...] = CANDIDATES,
    group_size: int = 32,
    progress: bool = True,
) -> np.ndarray:
    """(layers, candidates) KL from KV16 in nats/token with only that layer at that pair, the rest at 16 bits."""
    layers = meter.model.config.get_text_config(decoder=True).num_hidden_layers
    table = np.zeros((layers, len(candidates)))
    jobs = [(layer, j) for layer in range(layers) for j in range(len(candidates))]
    for layer, j in tqdm(jobs, desc="kv sensitivity", unit="run", disable=not progress):
        pairs = [(16, 16)] * layers
        pairs[layer] = candidates[j]
        table[layer, j] = meter(KVConfig(pairs=tuple(pairs), group_size=group_size))
    return table


def pareto_pairs(sensitivity: np.ndarray, candidates: tuple[tuple[int, int], ...] = CANDIDATES) -> list[int]:
    """Indices of the candidates not dominated in (key + value bits, sensitivity): no other pair has at most
    the bits and at most the sensitivity with one of them strictly less. Sorted by bits, then sensitivity."""
    bits = [k + v for k, v in candidates]
    keep = [
        i
        for i in range(len(candidates))
        if not any(
            bits[j] <= bits[i]
            and sensitivity[j] <= sensitivity[i]
            and (bits[j] < bits[i] or sensitivity[j] < sensitivity[i])
            for j in range(len(candidates))
        )
    ]
    return sorted(keep, key=lambda i: (bits[i], sensitivity[i]))


def cluster_layers(sensitivity: np.ndarray, groups: int) -> list[int]:
    """Group label per layer (0 = the group of layer 0, numbered in order of first layer): `groups` clusters of
    the layers' log10 sensitivity profiles (agglomerative, Ward; deterministic). Identical profiles share a group;
    `groups` >= layers gives every layer its own group."""
    layers = sensitivity.shape[0]
    if groups < 1:
        raise ValueError(f"groups {groups} must be at least 1")
    if groups >= layers:
        return list(range(layers))
    from sklearn.cluster import AgglomerativeClustering

    profiles = np.log10(np.maximum(sensitivity, FLOOR))
    distinct = len(np.unique(profiles, axis=0))
    raw = AgglomerativeClustering(n_clusters=min(groups, distinct), linkage="ward").fit_predict(profiles)
    order = {}
    for label in raw:
        order.setdefault(int(label), len(order))
    return [order[int(label)] for label in raw]


def pareto_front(points: list[dict]) -> list[dict]:
    """The points (dicts with avg_bits and kl) that no other point dominates, sorted by avg_bits; of exact
    duplicates the first is kept."""
    front = []
    for i, p in enumerate(points):
        dominated = any(
            q["avg_bits"] <= p["avg_bits"]
            and q["kl"] <= p["kl"]
            and (q["avg_bits"] < p["avg_bits"] or q["kl"] < p["kl"] or j < i)
            for j, q in enumerate(points)
            if j != i
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p["avg_bits"], p["kl"]))


@dataclass
class TuneResult:
    """Everything a tuning run found. sensitivity: (layers, candidates) nats/token; labels: group per layer;
    group_pairs: the kept candidate indices per group; trials: every evaluated config (trial order) as
    {"pairs", "avg_bits", "kl"}; pareto: the non-dominated trials by avg_bits."""

    candidates: tuple[tuple[int, int], ...]
    sensitivity: np.ndarray
    labels: list[int]
    group_pairs: list[list[int]]
    trials: list[dict]
    pareto: list[dict]
    group_size: int
    residual_length: int

    def config(self, point: dict, name: str) -> KVConfig:
        return KVConfig(
            pairs=tuple(map(tuple, point["pairs"])),
            group_size=self.group_size,
            residual_length=self.residual_length,
            name=name,
        )

    def to_dict(self) -> dict:
        return {
            "candidates": [list(c) for c in self.candidates],
            "sensitivity_nats": self.sensitivity.tolist(),
            "labels": self.labels,
            "group_pairs": [[list(self.candidates[i]) for i in g] for g in self.group_pairs],
            "group_size": self.group_size,
            "residual_length": self.residual_length,
            "trials": self.trials,
            "pareto": self.pareto,
        }


def search(
    meter: KLMeter,
    labels: list[int],
    group_pairs: list[list[int]],
    candidates: tuple[tuple[int, int], ...] = CANDIDATES,
    trials: int = 40,
    seed: int = 0,
    group_size: int = 32,
    residual_length: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Every config NSGA-II (optuna, seeded) tried, in trial order, as {"pairs", "avg_bits", "kl"}: one pair per
    group from its kept candidates, minimizing (average KV bits, calibration KL). The first trials are every
    group at its most and at its fewest bits (so the front spans the budget range), then every group at each
    candidate all groups kept, most bits first (within `trials`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    groups = len(group_pairs)
    sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=min(20, max(4, trials // 2)))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    for pick in (-1, 0):
        study.enqueue_trial({f"group{g}": group_pairs[g][pick] for g in range(groups)})
    # Uniform configs kept by every group next, so the front is never worse than a uniform candidate.
    for c in sorted(set.intersection(*(set(g[1:-1]) for g in group_pairs)), key=lambda c: -sum(candidates[c])):
        study.enqueue_trial({f"group{g}": c for g in range(groups)})
    found = []
    bar = tqdm(total=trials, desc="kv search", unit="trial", disable=not progress)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        choice = [trial.suggest_categorical(f"group{g}", group_pairs[g]) for g in range(groups)]
        kv = KVConfig(
            pairs=tuple(candidates[choice[g]] for g in labels), group_size=group_size, residual_length=residual_length
        )
        kl = meter(kv)
        found.append({"pairs": [list(p) for p in kv.pairs], "avg_bits": kv.avg_bits, "kl": kl})
        bar.update()
        return kv.avg_bits, kl

    study.optimize(objective, n_trials=trials)
    bar.close()
    return found


def tune(
    meter: KLMeter,
    groups: int = 2,
    trials: int = 40,
    seed: int = 0,
    candidates: tuple[tuple[int, int], ...] = CANDIDATES,
    group_size: int = 32,
    residual_length: int = 0,
    progress: bool = True,
) -> TuneResult:
    """The whole KVTuner pipeline on the meter's calibration windows; see the module docstring."""
    if trials < 2:
        raise ValueError(f"trials {trials} must be at least 2 (the two extreme configs are always tried)")
    sensitivity = layer_sensitivity(meter, candidates, group_size, progress)
    labels = cluster_layers(sensitivity, groups)
    group_pairs = [
        pareto_pairs(sensitivity[[i for i, g in enumerate(labels) if g == group]].sum(0), candidates)
        for group in range(max(labels) + 1)
    ]
    found = search(meter, labels, group_pairs, candidates, trials, seed, group_size, residual_length, progress)
    return TuneResult(
        candidates, sensitivity, labels, group_pairs, found, pareto_front(found), group_size, residual_length
    )


def choose(result: TuneResult, max_bits: float, name: str = "kvtuner") -> KVConfig:
    """The Pareto config with the lowest calibration KL whose average KV bits are at most `max_bits`."""
    fitting = [p for p in result.pareto if p["avg_bits"] <= max_bits + 1e-9]
    if not fitting:
        low = min(p["avg_bits"] for p in result.pareto)
        raise ValueError(f"no tuned config within {max_bits} average KV bits: the fewest found is {low}")
    return result.config(min(fitting, key=lambda p: (p["kl"], p["avg_bits"])), name)
