"""Every `ecdiff` command describes itself and shows each option's default in --help."""

import argparse

import pytest

from ecdiff.cli import SUBCOMMANDS, build_parser


def leaf_parsers():
    """(path, parser) of every runnable subcommand."""
    found = []

    def walk(path, parser):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((path, parser))
        for action in subs:
            for name, child in action.choices.items():
                walk(f"{path} {name}", child)

    for command in SUBCOMMANDS:
        top = build_parser(command)
        sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
        walk(command, sub.choices[command])
    return found


LEAVES = leaf_parsers()


def test_every_command_is_found():
    paths = {path for path, _ in LEAVES}
    assert {"bench quality", "bench ablation", "bench rule-error", "bench sessions", "bench refine-rules", "serve cloud", "serve edge", "generate", "search",
            "noise-curve", "demo"} <= paths


@pytest.mark.parametrize("path,parser", LEAVES, ids=[p for p, _ in LEAVES])
def test_description_and_defaults_in_help(path, parser):
    assert parser.description, f"`ecdiff {path}` has no description"
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction,
                                                                   argparse.BooleanOptionalAction)):
            continue
        if action.required or not action.option_strings:
            continue
        assert action.help and "default" in action.help, f"`ecdiff {path}` {action.option_strings[0]}: no default in help"


@pytest.mark.parametrize("path,parser", LEAVES, ids=[p for p, _ in LEAVES])
def test_one_vocabulary(path, parser):
    """--cloud / --edge are addresses, models are --cloud-model / --edge-model (or --model for one
    role), threads are --torch-threads (old spellings survive only as hidden aliases)."""
    shown = {s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
    assert not shown & {"--threads", "--p", "--s"}, path
    for flag in ("--cloud", "--edge"):
        action = next((a for a in parser._actions if flag in a.option_strings and a.help != argparse.SUPPRESS), None)
        if action is not None:
            assert "HOST:PORT" in action.help, f"`ecdiff {path}` {flag} must be an address"


RUNS_MODELS = ["bench quality", "bench ablation", "bench sessions", "bench load", "search", "noise-curve",
               "serve cloud", "serve edge", "demo"]


@pytest.mark.parametrize("path", RUNS_MODELS)
def test_every_command_that_runs_a_model_places_it(path):
    parser = dict(LEAVES)[path]
    shown = {s for a in parser._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
    assert {"--device", "--dtype"} <= shown, path
    if path != "demo":  # the demo runs each model at its own guidance
        assert "--guidance" in shown, path


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("argv", [
    ["bench", "quality", "--tiny", "--prompts", "bench/quality_prompts.tsv"],
    ["bench", "sessions", "--tiny", "--sessions", "data/sessions/heldout.jsonl"],
    ["bench", "load", "--tiny"],
    ["search", "--tiny", "--prompts", "bench/search_prompts.tsv"],
    ["noise-curve", "--tiny", "--prompts", "bench/search_prompts.tsv"],
    ["demo", "--cloud-model", "tiny", "--edge-model", "tiny"],
], ids=lambda argv: " ".join(argv[:2]))
def test_cuda_without_cuda_fails_at_start_with_the_reason(argv, capsys, tmp_path, monkeypatch):
    from ecdiff.cli import main

    monkeypatch.chdir(__import__("pathlib").Path(__file__).parents[2])  # the prompt files are repository paths
    assert main([*argv, "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
