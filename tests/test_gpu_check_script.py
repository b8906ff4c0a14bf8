import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_the_dry_run_and_the_results_folder():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    assert "--device {cuda,cpu}" in done.stdout and "--out" in done.stdout


def test_the_scoring_dry_run_agrees_between_its_two_runs():
    result = load_script().run_step("scoring", "cpu", None)
    assert result["passed"]
    assert max(result["edistance"]["max_relative_difference"].values()) == 0.0
