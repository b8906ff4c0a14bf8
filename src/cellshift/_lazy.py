"""Lazy package attributes: a package names what it exports, and a submodule is imported on first use.

Package ``__init__`` files list their public names without importing the submodules, so that
``import cellshift.analysis.split`` does not pay for torch because ``cellshift.analysis`` also
exports the (torch-based) scoring functions (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return a module ``__getattr__`` and ``__dir__`` that import ``exports[name]`` on first access.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name -> submodule (relative to ``package``) that defines it.

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign in the package's ``__init__``.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
