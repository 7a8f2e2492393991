"""Running a merge config: load and check the models, compute Sens-Merging coefficients if asked, merge every
parameter with the chosen method, and save a normal `save_pretrained` folder."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from models.merge.config import MergeConfig
from models.merge.methods import METHODS
from models.merge.sensitivity import SensCoefficients, calibration_windows, sens_merging
from models.merge.task_vector import Loaded, check_compatible, load_checkpoint, parameters, resolve

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class MergeReport:
    """What a merge did: the config's settings, resolved model folders, and Sens-Merging's coefficients."""

    method: str
    lam: float
    normalize: bool
    models: list[dict]
    base_model: str | None
    sens: dict | None = None
    coefficients: dict | None = field(default=None, repr=False)


def load_models(cfg: MergeConfig) -> Loaded:
    """Resolve, load and check every model of `cfg`; MergeError naming the offending entry."""
    where = ["base_model"] + [f"models[{i}]" for i in range(len(cfg.models))]
    names = [cfg.base_model] + [e.model for e in cfg.models]
    paths = {w: resolve(n, cfg.zoo_preset, cfg.zoo_seed, w) for w, n in zip(where, names, strict=True) if n is not None}
    loaded = {w: load_checkpoint(p, w) for w, p in paths.items()}
    ref = "base_model" if cfg.base_model is not None else "models[0]"
    for w, (model, _) in loaded.items():
        if w != ref:
            check_compatible(loaded[ref][0], ref, model, w)
    tokenizer = loaded[ref][1]
    if cfg.tokenizer_source != "base":
        path = resolve(cfg.tokenizer_source, cfg.zoo_preset, cfg.zoo_seed, "tokenizer_source")
        tokenizer = load_checkpoint(path, "tokenizer_source")[1]
    base = loaded["base_model"][0] if cfg.base_model is not None else None
    return Loaded(base, [loaded[w][0] for w in where[1:]], tokenizer, paths)


def tensor_generator(seed: int, name: str) -> torch.Generator:
    """DARE's random source for one parameter: fixed by the config seed and the parameter name, so a merge is
    reproducible and independent of the order parameters are visited."""
    return torch.Generator().manual_seed(zlib.crc32(name.encode()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF))


def compute_sens(cfg: MergeConfig, loaded: Loaded, progress: bool = False) -> SensCoefficients:
    """Sens-Merging coefficients of `cfg`'s fine-tuned models on their calibration data."""
    windows = [
        calibration_windows(e, loaded.tokenizer, cfg.sens, cfg.zoo_preset, cfg.zoo_seed, f"models[{i}]")
        for i, e in enumerate(cfg.models)
    ]
    return sens_merging(loaded.tuned, windows, cfg.sens, loaded.base, progress)


@torch.no_grad()
def merge_loaded(
    cfg: MergeConfig, loaded: Loaded, coeffs: SensCoefficients | None = None, progress: bool = False
) -> PreTrainedModel:
    """The merged model (a copy of the base's, or the first model's, architecture) in `cfg.dtype`; with `coeffs`,
    each model's weight in a layer is multiplied by Sens-Merging's K·σ_i^l."""
    method = METHODS[cfg.merge_method](cfg.lam, cfg.normalize)
    template = loaded.base if loaded.base is not None else loaded.tuned[0]
    merged = copy.deepcopy(template)
    base = parameters(loaded.base) if loaded.base is not None else None
    tuned = [parameters(m) for m in loaded.tuned]
    targets = dict(merged.named_parameters())
    for name in tqdm(list(targets), desc=f"merge {cfg.merge_method}", disable=not progress):
        weights = [e.weight for e in cfg.models]
        if coeffs is not None:
            weights = [w * s for w, s in zip(weights, coeffs.weights(name), strict=True)]
        out = method.merge(
            None if base is None else base[name],
            [t[name] for t in tuned],
            weights,
            [e.density for e in cfg.models],
            tensor_generator(cfg.seed, name),
        )
        targets[name].copy_(out)
    return merged.to(DTYPES[cfg.dtype])


def report_for(cfg: MergeConfig, loaded: Loaded, coeffs: SensCoefficients | None) -> MergeReport:
    """The report of merging `loaded` as `cfg` says, with Sens-Merging's coefficients if used."""
    return MergeReport(
        method=cfg.merge_method,
        lam=cfg.lam,
        normalize=METHODS[cfg.merge_method](cfg.lam, cfg.normalize).normalize,
        models=[{**asdict(e), "path": str(loaded.paths[f"models[{i}]"])} for i, e in enumerate(cfg.models)],
        base_model=str(loaded.paths["base_model"]) if cfg.base_model is not None else None,
        sens=asdict(cfg.sens) if coeffs is not None and cfg.sens is not None else None,
        coefficients=coeffs.as_dict() if coeffs is not None else None,
    )


def merge(
    cfg: MergeConfig, progress: bool = False, device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, MergeReport]:
    """Run a merge config end to end: (merged model, tokenizer, report). The models are loaded in float32 and
    merged on `device` (cpu, cuda, ...); the merged model comes out in `cfg.dtype`."""
    from models.device import place

    loaded = load_models(cfg)
    for model in [loaded.base, *loaded.tuned]:
        if model is not None:
            place(model, device, dtype=None)
    coeffs = compute_sens(cfg, loaded, progress) if cfg.sens is not None else None
    return merge_loaded(cfg, loaded, coeffs, progress), loaded.tokenizer, report_for(cfg, loaded, coeffs)


def save(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, report: MergeReport, cfg: MergeConfig, out: Path
) -> None:
    """Write a `save_pretrained` folder (model, tokenizer, merge_config.yml, merge_report.json) at `out`, built in a
    private sibling folder and renamed into place, so `out` is either the old folder or the complete new one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        work.chmod(0o777 & ~_umask())
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / "merge_config.yml").write_text(yaml.safe_dump(cfg.source, sort_keys=False))
        (work / "merge_report.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-"))
            os.replace(out, old / "previous")
        os.replace(work, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
