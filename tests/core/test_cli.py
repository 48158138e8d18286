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
    assert {"bench quality", "bench ablation", "bench rule-error", "bench sessions", "serve cloud", "serve edge", "generate", "search",
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
