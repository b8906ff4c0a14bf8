"""Import costs: the layers below the model never load torch, and ``cellshift --help`` stays light."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cellshift
import cellshift.data

PACKAGE = Path(cellshift.__file__).parent
TORCH_FREE_PACKAGES = ("data", "datasets", "tokenize", "priors")
TORCH_FREE_ANALYSES = (
    "cellshift.analysis",
    "cellshift.analysis.differential",
    "cellshift.analysis.enrichment",
    "cellshift.analysis.screen_input",
    "cellshift.analysis.split",
    "cellshift.analysis.response.targets",
    "cellshift.analysis.response.baselines",
    "cellshift.analysis.response.evaluation",
)
HEAVY = ("torch", "transformers", "accelerate")


def _modules_of(package: str) -> list[str]:
    folder = PACKAGE / package
    names = [f"cellshift.{package}"]
    names += [f"cellshift.{package}.{info.name}" for info in pkgutil.iter_modules([str(folder)])]
    return names


def _heavy_modules_after(code: str) -> list[str]:
    probe = code + f"\nimport sys\nprint(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [name for name in result.stdout.strip().split(",") if name]


def test_non_model_layers_do_not_import_torch():
    modules = [name for package in TORCH_FREE_PACKAGES for name in _modules_of(package)]
    modules += TORCH_FREE_ANALYSES
    assert len(modules) > 15
    assert _heavy_modules_after("\n".join(f"import {name}" for name in modules)) == []


def test_package_exports_resolve_lazily():
    code = "import cellshift.analysis as a\nassert callable(a.degs)\nassert callable(a.zero_deg_enrichment)"
    assert _heavy_modules_after(code) == []
    assert "torch" in _heavy_modules_after("import cellshift.analysis as a\na.score_perturbations")


def test_unknown_package_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        cellshift.data.no_such_name  # noqa: B018
