"""benchmarks/common.py: where a run writes (scratch by default, the recorded tables only when
asked) and the provenance line that heads every table."""

import argparse
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)

# "Recorded <date>, commit <hash>[+ ...], <cpu>, <n> cores, <t> thread(s)[, load average <l>]."
PROVENANCE = re.compile(r"^Recorded (\d{4}-\d{2}-\d{2}), commit ([0-9a-f]{7,40}|unknown)(\+ \(uncommitted changes\))?, "
                        r"(.+), (\d+) cores, (\d+) threads?(, load average [0-9.]+)?\.$")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    common.add_output_arguments(p)
    return p


def test_a_plain_run_writes_to_the_git_ignored_scratch_folder():
    args = parser().parse_args([])
    assert common.output_dir(args) == common.SCRATCH != common.RESULTS
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(common.SCRATCH / "bench_x.md")])
    assert ignored.returncode == 0, "benchmarks/_scratch/ must be git-ignored"


def test_the_recorded_tables_are_written_only_when_asked(tmp_path):
    assert common.output_dir(parser().parse_args(["--write-results"])) == common.RESULTS
    assert common.output_dir(parser().parse_args(["--out-dir", str(tmp_path)])) == tmp_path
    with pytest.raises(SystemExit):  # both: argparse refuses
        parser().parse_args(["--write-results", "--out-dir", str(tmp_path)])


def test_write_results_heads_table_and_json_with_the_provenance(tmp_path, capsys):
    common.write_results(tmp_path / "bench_x", {"rows": [1, 2]}, "| a |\n|---|\n| 1 |\n", threads=3)
    table = (tmp_path / "bench_x.md").read_text().splitlines()
    match = PROVENANCE.match(table[0])
    assert match, table[0]
    date, commit, _, cpu, cores, threads, _ = match.groups()
    assert threads == "3" and cpu == common.cpu_name() and int(cores) >= 1
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert head.startswith(commit)
    assert table[1:] == ["", "| a |", "|---|", "| 1 |"]
    payload = json.loads((tmp_path / "bench_x.json").read_text())
    assert payload == {"provenance": table[0], "rows": [1, 2]}
    assert table[0] in capsys.readouterr().out


@pytest.mark.parametrize("table", sorted((ROOT / "benchmarks" / "results").glob("*.md")), ids=lambda p: p.name)
def test_every_recorded_table_names_its_date_commit_cpu_and_threads(table):
    assert PROVENANCE.match(table.read_text().splitlines()[0]), table.read_text().splitlines()[0]


def test_timed_calls_wait_for_threads_a_previous_call_left_spinning():
    """giotto-ph's pool spins ~100 ms after a call returns; the next timed call waits it out."""
    import threading
    import time

    stop = time.perf_counter() + 0.3
    spinner = threading.Thread(target=lambda: [None for _ in iter(lambda: time.perf_counter() < stop, False)])
    spinner.start()
    start = time.perf_counter()
    common.wait_for_idle_threads(limit=2.0)
    waited = time.perf_counter() - start
    spinner.join()
    assert waited >= 0.2, waited  # it waited for the spinning thread to end
    start = time.perf_counter()
    common.wait_for_idle_threads(limit=2.0)
    assert time.perf_counter() - start < 0.1  # nothing else running: it returns at once


def test_a_thread_that_ends_while_its_cpu_time_is_read_counts_as_idle(monkeypatch):
    """A thread still listed in /proc/self/task after it ended fails the read of its schedstat
    with ProcessLookupError (a CI run's wait_for_idle_threads once got None and raised TypeError)."""
    import builtins
    import threading

    real_open = builtins.open
    own = str(threading.get_native_id())

    def open_as_if_ended(path, *args, **kwargs):
        if str(path).endswith("/schedstat") and f"/task/{own}/" not in str(path):
            raise ProcessLookupError(3, "No such process")
        return real_open(path, *args, **kwargs)

    worker = threading.Thread(target=threading.Event().wait, args=(1.0,))
    worker.start()
    monkeypatch.setattr(builtins, "open", open_as_if_ended)
    try:
        assert common._other_threads_cpu_ns() == 0
        common.wait_for_idle_threads(limit=0.1)
    finally:
        monkeypatch.undo()
        worker.join()


def test_native_h1_breakdown_runs_on_a_tiny_batch(tmp_path):
    """bench_native_h1.py times the backend's internal steps (the H0 pass, H1, the compiled
    gather) one by one, so it breaks when they change: run it on a tiny batch."""
    import os
    import sys

    pytest.importorskip("gudhi")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_native_h1.py"), "--m", "16", "--batch", "3",
               "--kinds", "gaussian", "--repeats", "1", "--out-dir", str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "native_h1.json").read_text())
    assert len(result["rows"]) == 1
