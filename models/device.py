"""Where a models tool runs its model: `--device` (cpu, cuda, cuda:N, mps) and `--dtype` (float32, bfloat16,
float16), checked before torch is imported where the machine alone can tell (no NVIDIA driver, not macOS).

The tools build their inputs (token windows, labels) on the CPU; `place` moves the model and installs a hook
that moves a forward call's tensor arguments to the model's device and its tensor outputs back to the CPU, so
every tool runs unchanged on any device while the model's own arithmetic runs there.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads after the CLI checked its arguments
    import torch

DTYPES = ("float32", "bfloat16", "float16")
_DEVICE = re.compile(r"cpu|mps|cuda(:\d{1,3})?")
_NVIDIA_DRIVER = (Path("/proc/driver/nvidia/version"), Path("/dev/nvidiactl"))
_HOOKED = "_mixkit_device_hook"


def device_name(text: str) -> str:
    """An argparse type: cpu, cuda, cuda:N or mps (the form only; `check_device` checks the machine)."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: give cpu, cuda, cuda:N or mps")
    return text


def add_device_arguments(p: argparse.ArgumentParser, dtype_default: str | None = "float32") -> None:
    """--device and --dtype on a tool's parser (`dtype_default` None: the input's own dtype unless given)."""
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    default = f"default {dtype_default}" if dtype_default else "default: the input's"
    p.add_argument("--dtype", choices=DTYPES, default=dtype_default, help=f"model weights' dtype ({default})")


def check_device(device: str) -> None:
    """ValueError (one line) unless `device` exists here; imports torch only for a CUDA device on a machine
    that has an NVIDIA driver (torch alone knows whether its build and the driver agree)."""
    if device == "cpu":
        return
    if device == "mps":
        if sys.platform != "darwin":
            raise ValueError("--device mps: Apple's Metal (mps) exists only on macOS; use --device cpu")
        import torch

        if not torch.backends.mps.is_available():
            raise ValueError("--device mps: this torch build or Mac has no Metal support; use --device cpu")
        return
    if sys.platform.startswith("linux") and not any(p.exists() for p in _NVIDIA_DRIVER):
        raise ValueError(f"--device {device}: CUDA is not available (no NVIDIA driver here); use --device cpu")
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this torch build cannot use the GPU (torch {torch.__version__}); use cpu")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s); pick cuda:0..")


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named `name` (one of DTYPES)."""
    import torch

    return getattr(torch, name)


def _moved(value: object, device: torch.device) -> object:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_moved(v, device) for v in value)
    return value


def _inputs_to_model(module, args, kwargs):
    device = next(module.parameters()).device
    return _moved(args, device), {k: _moved(v, device) for k, v in kwargs.items()}


def _outputs_to_cpu(module, args, kwargs, output):
    import torch

    if next(module.parameters()).device.type == "cpu":
        return output
    if isinstance(output, torch.Tensor):
        return output.cpu()
    if isinstance(output, dict):  # a transformers ModelOutput: logits, loss, hidden states (caches stay put)
        for key, value in output.items():
            if isinstance(value, (torch.Tensor, tuple)):
                output[key] = _moved(value, torch.device("cpu"))
    return output


def place(model: torch.nn.Module, device: str = "cpu", dtype: str | None = "float32") -> torch.nn.Module:
    """`model` moved to `device` and cast to `dtype` (None: kept), in place; its forward takes CPU tensors and
    returns CPU tensors (see the module docstring). Returns `model`."""
    model.to(device=device, dtype=torch_dtype(dtype) if dtype else None)
    if not getattr(model, _HOOKED, False):
        model.register_forward_pre_hook(_inputs_to_model, with_kwargs=True)
        model.register_forward_hook(_outputs_to_cpu, with_kwargs=True)
        setattr(model, _HOOKED, True)
    return model


def placement(args: argparse.Namespace) -> dict:
    """The --device / --dtype of a tool's arguments as `place` keywords."""
    return {"device": args.device, "dtype": args.dtype}
