"""Building, caching and loading zoo checkpoints, and loading any local Llama-family checkpoint."""

from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from hw.cache import RESULT, cache_root, staged_entry
from models.zoo.data import sources, texts_for, training_streams
from models.zoo.errors import ZooError
from models.zoo.evaluate import evaluate
from models.zoo.presets import Preset, get_preset
from models.zoo.tokenizer import train_tokenizer
from models.zoo.train import new_model, single_thread, train

NAMES = ("base", "code", "math", "english")
SUPPORTED = ("llama", "mistral", "qwen2", "mixtral")
# Source weights of each training mix ("man" and "doc" together are the English task).
BASE_MIX = {"code": 0.3, "man": 0.175, "doc": 0.175, "math": 0.2, "recall": 0.15}
VARIANT_MIX = {"code": {"code": 1.0}, "math": {"math": 0.6, "recall": 0.4}, "english": {"man": 0.5, "doc": 0.5}}
# Held-out tasks each variant specializes in, and the accuracy that must improve on each.
OWN_TASKS = {"code": ("code",), "math": ("math", "recall"), "english": ("english",)}
ACCURACY = {"code": "top1", "english": "top1", "math": "answer_top1", "recall": "exact_match"}


def entry_dir(preset: str = "default", seed: int = 0) -> Path:
    """The cache folder of a preset and seed (it may not exist yet)."""
    return cache_root() / "zoo" / get_preset(preset).key(seed)


def _paths(entry: Path) -> dict[str, Path]:
    return {name: entry / name for name in NAMES}


def _tokenizer_texts(p: Preset, seed: int) -> list[str]:
    texts = []
    for src in sources(p, seed).values():
        used = 0
        for t in src.train:
            if used >= p.tokenizer_chars:
                break
            texts.append(t)
            used += len(t)
    for task in ("math", "recall"):
        texts.extend(texts_for(task, "train", p, seed)[:2_000])
    return texts


def checks(evaluation: dict[str, dict]) -> dict[str, dict[str, dict[str, bool]]]:
    """For each variant and each of its own tasks: does it beat the base on perplexity and on accuracy?"""
    base = evaluation["base"]
    out = {}
    for variant, own in OWN_TASKS.items():
        ev = evaluation[variant]
        out[variant] = {
            task: {
                "ppl": ev[task]["ppl"] < base[task]["ppl"],
                "accuracy": ev[task][ACCURACY[task]] > base[task][ACCURACY[task]],
            }
            for task in own
        }
    return out


def _available(mix: dict[str, float], streams: dict, seq_len: int, what: str) -> dict[str, float]:
    # A machine may lack a source (no man pages, say): train on the rest of the mix, and say so if nothing is left.
    kept = {k: w for k, w in mix.items() if len(streams[k].tokens) > seq_len}
    if not kept:
        raise ZooError(f"no training text for the {what} model on this machine: need one of {', '.join(mix)}")
    return kept


def build(preset: str = "default", seed: int = 0, progress: bool = True) -> dict[str, Path]:
    """Train (or find in the cache) the base model and its code, math and English variants.

    Returns {"base", "code", "math", "english"} → checkpoint folders (model and tokenizer, `save_pretrained`).
    The cache entry's result.json holds the corpus found, training figures and the evaluation."""
    p = get_preset(preset)
    final = entry_dir(preset, seed)
    if (final / RESULT).exists():
        return _paths(final)
    with staged_entry(final) as work, single_thread():
        t0, cpu0 = time.perf_counter(), time.process_time()
        found = sources(p, seed)
        tokenizer = train_tokenizer(_tokenizer_texts(p, seed), p.vocab_size)
        streams = training_streams(tokenizer, p, seed)
        prep_s = time.perf_counter() - t0
        model = new_model(p, tokenizer, seed)
        stats = {
            "base": train(
                model,
                streams,
                _available(BASE_MIX, streams, p.seq_len, "base"),
                p.base_tokens,
                p.base_lr,
                p,
                seed,
                "zoo base",
                progress,
            )
        }
        models = {"base": model}
        for i, (variant, mix) in enumerate(VARIANT_MIX.items()):
            v = copy.deepcopy(model)
            stats[variant] = train(
                v,
                streams,
                _available(mix, streams, p.seq_len, variant),
                p.finetune_tokens,
                p.finetune_lr,
                p,
                seed + 1 + i,
                f"zoo {variant}",
                progress,
            )
            models[variant] = v
        train_s = time.perf_counter() - t0 - prep_s
        evaluation = {}
        for name, m in models.items():
            m.save_pretrained(work / name)
            tokenizer.save_pretrained(work / name)
            evaluation[name] = evaluate(m, tokenizer, p, seed)
        # the whole build (data, training, evaluation): wall and this process's CPU seconds, since the
        # machine is shared and wall time alone says as much about the neighbours as about the build
        build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        result = {
            "preset": p.name,
            "seed": seed,
            "key": final.name,
            "parameters": sum(t.numel() for t in model.parameters()),
            "corpus": {
                name: {"files_found": s.files_found, "files_used": s.files_used, "chars_used": s.chars_used}
                for name, s in found.items()
            },
            "stream_tokens": {name: int(len(s.tokens)) for name, s in streams.items()},
            "prep_seconds": round(prep_s, 2),
            "train_seconds": round(train_s, 2),
            "build_seconds": round(build_s, 2),
            "build_cpu_seconds": round(build_cpu_s, 2),
            "training": stats,
            "evaluation": evaluation,
            "checks": checks(evaluation),
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            },
        }
        (work / RESULT).write_text(json.dumps(result, indent=1) + "\n")
    return _paths(final)


def build_result(preset: str = "default", seed: int = 0) -> dict:
    """The result.json of a built zoo (building it if needed)."""
    build(preset, seed)
    return json.loads((entry_dir(preset, seed) / RESULT).read_text())


def checkpoint_type(path: Path) -> str:
    """The `model_type` of a local checkpoint folder; ZooError (one line) if it is missing or unsupported."""
    if not path.is_dir():
        raise ZooError(f"no checkpoint folder at {path}: pass one of {', '.join(NAMES)} or a local Hugging Face folder")
    config = path / "config.json"
    if not config.is_file():
        raise ZooError(f"{path} has no config.json: pass a folder written by save_pretrained")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type not in SUPPORTED:
        raise ZooError(f"unsupported architecture {model_type!r} in {path}: use a {'/'.join(SUPPORTED)} checkpoint")
    return model_type


def load(name_or_path: str | Path, preset: str = "default") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A model (eval mode, eager attention) and its tokenizer: a zoo name ("base", "code", "math", "english";
    built if needed) or a local Llama/Mistral/Qwen2/Mixtral checkpoint folder."""
    if isinstance(name_or_path, str) and name_or_path in NAMES:
        path = build(preset)[name_or_path]
    else:
        path = Path(name_or_path)
    checkpoint_type(path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    model.eval()
    return model, tokenizer
