"""Lazy package exports: `from models.merge import merge` imports torch only when `merge` is first used, so
`python -m models.merge --bad-flag` (which imports the package first) answers in well under a second."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable


class _LazyPackage(types.ModuleType):
    """A package whose exports win over same-named submodules (`models.merge.merge` the module vs `merge` the
    function), as they do when a package imports its exports eagerly."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and name in self.__dict__.get("_lazy_exports", ()):
            return  # the import system binding a submodule: keep the export of that name
        super().__setattr__(name, value)


def lazy_exports(package: str, modules: dict[str, list[str]]) -> tuple[list[str], Callable]:
    """(__all__, __getattr__) for `package`, exporting each name of `modules` ({submodule: names}) from
    `package.submodule` on first access."""
    where = {name: sub for sub, names in modules.items() for name in names}
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module._lazy_exports = where

    def getattr_(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(module, name, value)
        return value

    return sorted(where), getattr_
