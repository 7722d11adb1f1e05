"""Every script under ``examples/`` and ``benchmarks/`` that has an argparse parser explains each
of its options in ``--help``, with the option's default; a benchmark (a script that writes
through ``benchmarks/common.py``'s ``write_results``) writes to the recorded tables only when asked (``--write-results``).

Scripts are found by globbing, so a new script is covered without editing this file. Each runs
as ``python script --help`` in a subprocess in which ``ArgumentParser.print_help`` first prints a
description of the parser (and of its sub-commands' parsers), then the usual help.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def scripts() -> list[Path]:
    found = []
    for folder in ("examples", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text()
            if "argparse" in text and "__main__" in text:
                found.append(path)
    return found


SCRIPTS = scripts()

PROBE = r"""
import argparse, json, os, runpy, sys


def describe(parser):
    out = {"prog": parser.prog, "formatter": [c.__name__ for c in parser.formatter_class.__mro__],
           "help": parser.format_help(), "options": [], "commands": []}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            unique = {id(p): p for p in action.choices.values()}.values()  # aliases repeat a parser
            out["commands"] += [describe(p) for p in unique]
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            help = None if action.help in (None, argparse.SUPPRESS) else action.help
            out["options"].append({"flags": action.option_strings, "help": help, "default": str(action.default)})
    return out


original = argparse.ArgumentParser.print_help


def print_help(self, file=None):
    print("PARSER " + json.dumps(describe(self)), flush=True)
    original(self, file)


argparse.ArgumentParser.print_help = print_help
script = sys.argv[1]
sys.argv = [script, "--help"]
sys.path.insert(0, os.path.dirname(script))  # as `python script` does
runpy.run_path(script, run_name="__main__")
"""


def problems(parser: dict) -> list[str]:
    """What the parser's help leaves unsaid, for it and its sub-commands."""
    out = []
    shows_defaults = "ArgumentDefaultsHelpFormatter" in parser["formatter"]
    for option in parser["options"]:
        flag = "/".join(option["flags"])
        if not option["help"] or not option["help"].strip():
            out.append(f"{parser['prog']} {flag}: no help text")
        elif not shows_defaults and "%(default)" not in option["help"]:
            out.append(f"{parser['prog']} {flag}: default not shown (use argparse.ArgumentDefaultsHelpFormatter)")
    # What a user reads: the formatter writes "(default: ...)" after each option's help.
    if shows_defaults and parser["help"].count("(default:") < len(parser["options"]):
        out.append(f"{parser['prog']}: fewer defaults than options in\n{parser['help']}")
    for command in parser["commands"]:
        out += problems(command)
    return out


def test_the_scripts_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in SCRIPTS}
    assert {"examples/noisy_circles.py", "benchmarks/bench_image.py", "benchmarks/bench_loss.py",
            "examples/topkd/bench_topology.py"} <= names, names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_help_describes_every_option_and_its_default(script):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", PROBE, str(script)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    parsers = [json.loads(line[len("PARSER "):]) for line in run.stdout.splitlines() if line.startswith("PARSER ")]
    assert parsers, f"{script.name} --help printed no argparse help:\n{run.stdout[-2000:]}"
    (parser,) = parsers
    assert parser["options"] or parser["commands"], f"{script.name}: a parser without options"
    found = problems(parser)
    if re.search(r"from common import[^\n]*\bwrite_results\b", script.read_text()):
        # A benchmark: a plain run must not overwrite the recorded tables (benchmarks/common.py).
        flags = {flag for option in parser["options"] for flag in option["flags"]}
        if not {"--write-results", "--out-dir"} <= flags:
            found.append(f"{script.name}: no --write-results / --out-dir (use common.add_output_arguments)")
        found += [f"{script.name} {'/'.join(o['flags'])}: defaults to the recorded tables ({o['default']})"
                  for o in parser["options"] if "benchmarks/results" in o["default"]]
    if found:
        pytest.fail("\n".join(found), pytrace=False)
