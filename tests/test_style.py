import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_lint_and_numpydoc_docstrings_pass():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    folders = [name for name in ("src", "tests", "benchmarks", "scripts") if (ROOT / name).is_dir()]
    result = subprocess.run([ruff, "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lower_layers_never_import_higher_ones():
    """docs/architecture.md: data -> tokenize -> priors -> models -> training -> embed -> metrics -> analysis -> ..."""
    order = [
        *("data", "datasets", "tokenize", "priors", "models", "training", "embed", "metrics", "analysis", "tasks"),
        *("plotting", "report", "pipelines", "cli"),
    ]
    rank = {name: i for i, name in enumerate(order)}
    rank["datasets"] = rank["data"]
    problems = []
    for path in (ROOT / "src" / "cellshift").rglob("*.py"):
        parts = path.relative_to(ROOT / "src" / "cellshift").parts
        if len(parts) < 2 or parts[0] not in rank:
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith(("from cellshift.", "import cellshift.")):
                target = line.split()[1].split(".")[1]
                if target in rank and rank[target] > rank[parts[0]]:
                    problems.append(f"{path.name} imports cellshift.{target}")
    assert not problems, problems


def test_files_and_functions_stay_small():
    """Files under 400 lines and functions under 80 (docstring excluded), so each has one job a reader can hold."""
    too_long = []
    for path in (ROOT / "src" / "cellshift").rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = node.body[0]
                has_docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
                start = first.end_lineno + 1 if has_docstring and len(node.body) > 1 else first.lineno
                if node.end_lineno - start + 1 > 80:
                    too_long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - start + 1} lines")
    assert not too_long, too_long
