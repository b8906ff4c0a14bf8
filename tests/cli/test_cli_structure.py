"""The command line: light to start, one module per command, and one source of defaults with the API."""

import argparse
import dataclasses
import inspect
import subprocess
import sys

import pytest

from cellshift.analysis import degs, score_cells, score_perturbation_pairs, score_perturbations, split_perturbations
from cellshift.analysis.enrichment import zero_deg_enrichment
from cellshift.analysis.response import benchmark
from cellshift.cli import COMMANDS, build_parser, command_module
from cellshift.demo import run_demo
from cellshift.embed.registry import EmbedOptions
from cellshift.pipelines.finetune import finetune_on_screen
from cellshift.pipelines.screen_run import ScreenSettings
from cellshift.priors import PriorSettings, build_priors
from cellshift.tasks.annotation import AnnotationSettings
from cellshift.tasks.gene_classification import classify_genes
from cellshift.tasks.grn_inference import GrnSettings
from cellshift.tasks.insilico import InsilicoSettings
from cellshift.tokenize import compute_gene_medians, tokenize
from cellshift.training import ClassifierSettings, FinetuneSettings, PretrainSettings, pretrain
from cellshift.training.evaluation import evaluate_model_dir

# What each command wraps, and CLI option names that differ from the API's parameter names.
WRAPPED = {
    "tokenize": [tokenize],
    "medians": [compute_gene_medians],
    "priors": [PriorSettings, build_priors],
    "pretrain": [PretrainSettings, pretrain],
    "evaluate": [evaluate_model_dir],
    "finetune": [FinetuneSettings, finetune_on_screen],
    "embed": [EmbedOptions],
    "degs": [degs],
    "split": [split_perturbations],
    "score": [score_perturbations, score_perturbation_pairs, score_cells],
    "enrich": [zero_deg_enrichment],
    "predict-benchmark": [benchmark],
    "annotate": [AnnotationSettings, ClassifierSettings],
    "classify-genes": [classify_genes, ClassifierSettings],
    "insilico": [InsilicoSettings],
    "grn": [GrnSettings],
    "screen": [ScreenSettings],
    "demo": [run_demo],
}
ALIASES = {
    "lr": "learning_rate",
    "values": "use_values",
    "species": "use_species",
    "permutations": "n_permutations",
    "splits": "n_splits",
    "folds": "n_folds",
    "umap": "umap_perturbations",
    "gene_set": "gene_sets",
    "null": "n_null",
}


def _api_defaults(wrapped) -> dict:
    """Parameter or field name -> default, for functions and settings dataclasses."""
    if dataclasses.is_dataclass(wrapped):
        return {f.name: f.default for f in dataclasses.fields(wrapped) if f.default is not dataclasses.MISSING}
    parameters = inspect.signature(wrapped).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _normalised(value):
    """Lists as tuples; an empty list means the same as None (nothing given)."""
    if isinstance(value, list | tuple):
        return tuple(value) or None
    return value


def test_every_command_has_its_module():
    parser_actions = build_parser()._subparsers._group_actions[0].choices
    assert list(parser_actions) == list(COMMANDS) == list(WRAPPED) or set(COMMANDS) == set(WRAPPED)
    for command in COMMANDS:
        module = command_module(command)
        assert callable(module.add_arguments) and callable(module.run), command


def test_help_lists_the_commands_without_importing_them():
    probe = (
        "import sys\nfrom cellshift.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in sys.modules if m.startswith('cellshift.cli.') and m != 'cellshift.cli._common']\n"
        "print('LOADED', loaded, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "LOADED [] False" in result.stdout
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", list(WRAPPED))
def test_cli_defaults_agree_with_the_python_api(command):
    parser = argparse.ArgumentParser()
    command_module(command).add_arguments(parser)
    api = {}
    for wrapped in WRAPPED[command]:
        api.update({name: value for name, value in _api_defaults(wrapped).items() if name not in api})
    compared, disagreements = 0, []
    for action in parser._actions:
        name = ALIASES.get(action.dest, action.dest)
        if name not in api or action.default is argparse.SUPPRESS or isinstance(action, argparse._StoreTrueAction):
            continue
        if action.default is None and api[name] is not None:
            continue  # the command leaves the choice to the API (or fills it from other options)
        compared += 1
        if _normalised(action.default) != _normalised(api[name]):
            disagreements.append(f"--{action.dest.replace('_', '-')}: CLI {action.default!r} vs API {api[name]!r}")
    assert compared >= 1, f"no option of {command} matched the API"
    assert not disagreements, disagreements
