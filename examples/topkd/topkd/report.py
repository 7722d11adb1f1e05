"""Every table the suite writes (CSV, JSON and markdown, for CIFAR and ImageNet alike) and its
progress lines.

- :func:`write_results`: the students of one or several pairs against the paper
  (``results.csv``, ``results.json``, ``comparison.md``);
- :func:`write_table8`: the RipsNet's approximation errors (the poster's Table 8);
- :func:`write_sweep_table`: an ablation grid, mean ± std over seeds.

Every writer returns the markdown text and writes its files atomically.
"""
from __future__ import annotations

import csv
import io
import math
import os
import statistics
from typing import Any, Dict, List, Sequence

from . import distributed as D
from .storage import write_json, write_text

__all__ = ["log", "RESULT_COLUMNS", "PAPER_TABLE8", "TABLE8_COLUMNS", "write_csv",
           "mean_std", "write_results", "write_table8", "write_sweep_table"]

#: Columns of a student run's row in ``results.csv`` (one pipeline for both suites).
RESULT_COLUMNS = ("pair", "teacher", "student", "distiller", "seed", "last_acc", "best_acc",
                  "last_top5", "best_top5", "best_epoch", "step_time", "teacher_top1",
                  "teacher_top5", "ripsnet_heldout_mse", "ripsnet_constant_mse", "ripsnet_r2")

#: The poster's Table 8 (CIFAR-100): teacher error ``L_RN`` and ``||p̂_S - p_S||`` of the student
#: trained from scratch, with KD and with TopKD, keyed by (teacher, student) registry names.
PAPER_TABLE8 = {
    ("vgg13", "MobileNetV2"): (0.00229, 0.02335, 0.03408, 0.02103),
    ("ResNet50", "MobileNetV2"): (0.00218, 0.00997, 0.00734, 0.00740),
    ("ResNet50", "vgg8"): (0.00218, 0.11178, 0.01961, 0.01679),
    ("resnet32x4", "ShuffleV1"): (0.00248, 0.05301, 0.05114, 0.04084),
    ("resnet32x4", "ShuffleV2"): (0.00248, 0.06427, 0.07016, 0.00434),
    ("wrn_40_2", "ShuffleV1"): (0.00164, 0.06591, 0.05419, 0.05001),
}

#: Columns of a Table 8 row (:func:`topkd.analysis.approximation_errors`), in the CSV's order.
TABLE8_COLUMNS = ("pair", "teacher", "student", "distiller", "seed", "cloud_size", "num_clouds",
                  "ripsnet_train_l2", "ripsnet_r2", "teacher_err", "student_err", "approx_dist", "exact_dist",
                  "triangle_bound", "best_acc", "last_acc")


def log(cfg: Dict[str, Any], msg: str) -> None:
    """Print ``[<pair>] msg`` on rank 0 when the config's ``progress`` is on."""
    if cfg.get("progress", True) and D.is_main():
        print(f"[{cfg['name']}] {msg}", flush=True)


def write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    """Write ``rows`` to the CSV file ``path``: a header of the first row's keys, then one line
    per row."""
    if not rows:
        raise ValueError(f"rows is empty: nothing to write to {path!r}")
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(buf.getvalue(), path)


def mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``"m ± s"`` over the finite values, ``"m"`` for one value, ``"n/a"`` for none.

    >>> mean_std([70.0, 72.0])
    '71.00 ± 1.41'
    """
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _paper_top1(ref):
    """The paper's top-1 of a ``paper:`` entry: a number (CIFAR) or ``{top1, top5}`` (ImageNet)."""
    return ref.get("top1") if isinstance(ref, dict) else ref


def _cell(value) -> str:
    return "–" if value is None else str(value)


def _pair_lines(cfg: Dict[str, Any], rows: List[Dict[str, Any]]) -> List[str]:
    paper = cfg.get("paper") or {}
    lines = [f"### {cfg['name']}: {cfg['teacher']['arch']} → {cfg['student']['arch']} "
             f"({cfg['dataset']['name']})", "",
             "| distiller | seeds | best epoch | last epoch | best top-5 | last top-5 | paper "
             "| best − paper |", "|---|---|---|---|---|---|---|---|"]
    for entry in dict.fromkeys(r["distiller"] for r in rows):
        rs = [r for r in rows if r["distiller"] == entry]
        ref = _paper_top1(paper.get(entry))
        best = statistics.mean(r["best_acc"] for r in rs)
        delta = f"{best - ref:+.2f}" if isinstance(ref, (int, float)) else "–"
        lines.append(f"| {entry} | {len(rs)} | {mean_std([r['best_acc'] for r in rs])} "
                     f"| {mean_std([r['last_acc'] for r in rs])} "
                     f"| {mean_std([r['best_top5'] for r in rs])} "
                     f"| {mean_std([r['last_top5'] for r in rs])} | {_cell(ref)} | {delta} |")
    ours = rows[0]["teacher_top1"] if rows else None
    lines += ["", f"Teacher top-1: ours {'–' if ours is None else f'{ours:.2f}'}, paper "
                  f"{_cell(_paper_top1(paper.get('teacher')))}.", ""]
    quality = _ripsnet_line(rows[0] if rows else {})
    return lines + ([quality, ""] if quality else [])


def _ripsnet_line(row: Dict[str, Any]) -> str:
    """The pair's RipsNet quality (held-out MSE, the mean image's, R²), or ``""`` when the
    pair has no RipsNet.

    >>> _ripsnet_line({"ripsnet_heldout_mse": 0.001, "ripsnet_constant_mse": 0.004,
    ...                "ripsnet_r2": 0.75})
    'RipsNet (teacher clouds held out from its fit): MSE 0.00100, mean training image 0.00400, R² 0.750.'
    """
    if row.get("ripsnet_r2") is None:
        return ""
    return (f"RipsNet (teacher clouds held out from its fit): MSE {row['ripsnet_heldout_mse']:.5f}, "
            f"mean training image {row['ripsnet_constant_mse']:.5f}, R² {row['ripsnet_r2']:.3f}.")


def write_results(rows: List[Dict[str, Any]], cfgs: List[Dict[str, Any]], out_dir: str) -> str:
    """Write ``results.csv`` (one row per student run, :data:`RESULT_COLUMNS`),
    ``results.json`` (the runs, the per-(pair, distiller) means and stds, and the paper's
    numbers) and ``comparison.md`` (best and last epoch, mean ± std over seeds, against the
    paper), for any number of pairs of either suite.

    Parameters
    ----------
    rows : list of dict
        Rows with the keys of :data:`RESULT_COLUMNS`.
    cfgs : list of dict
        The pair configs (their ``paper`` numbers: a number per distiller, or ``{top1, top5}``).
    out_dir : str

    Returns
    -------
    str
        The markdown text.
    """
    if not rows:
        raise ValueError("rows is empty: no student run to tabulate")
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "results.csv"), [{k: r.get(k) for k in RESULT_COLUMNS}
                                                      for r in rows])
    summary = []
    for pair, entry in dict.fromkeys((r["pair"], r["distiller"]) for r in rows):
        rs = [r for r in rows if (r["pair"], r["distiller"]) == (pair, entry)]
        row = {"pair": pair, "distiller": entry, "n": len(rs)}
        for key in ("best_acc", "last_acc", "best_top5", "last_top5"):
            # runs written before top-5 was recorded have None there
            values = [r[key] for r in rs if r[key] is not None]
            row[f"{key}_mean"] = statistics.mean(values) if values else None
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["step_time"] = statistics.mean(r["step_time"] for r in rs)
        row["ripsnet_r2"] = rs[0].get("ripsnet_r2")
        summary.append(row)
    write_json({"runs": rows, "summary": summary,
                "paper": {c["name"]: c.get("paper") or {} for c in cfgs}},
               os.path.join(out_dir, "results.json"))
    lines = ["Top-1 accuracy (%): best test epoch (the official TopKD code's and mdistiller's "
             "report) and last epoch (RepDistiller's), mean ± std over seeds; paper = the "
             "poster's tables (best epoch).", ""]
    for cfg in cfgs:
        lines += _pair_lines(cfg, [r for r in rows if r["pair"] == cfg["name"]])
    text = "\n".join(lines)
    write_text(text, os.path.join(out_dir, "comparison.md"))
    return text


def write_table8(rows: List[Dict[str, Any]], out_dir: str) -> str:
    """Write ``table8.csv`` (one row per run, :data:`TABLE8_COLUMNS`) and ``table8.md``: per
    pair, ``L_RN``, each distiller's ``||p̂_S - p_S||`` and ``||p_S - p_T||`` (mean ± std over
    seeds, the smallest student error in bold), and the poster's values where the pair is one
    of its.

    Returns
    -------
    str
        The markdown text.
    """
    if not rows:
        raise ValueError("rows is empty: nothing to tabulate")
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "table8.csv"), [{k: r.get(k) for k in TABLE8_COLUMNS}
                                                     for r in rows])
    pairs: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault(r["pair"], []).append(r)
    entries = list(dict.fromkeys(r["distiller"] for r in rows))
    lines = ["Approximation errors (the poster's Table 8): L_RN = ||p̂_T − p_T|| over the "
             "RipsNet's training clouds; RipsNet R² = 1 − MSE / MSE of the mean training image, on "
             "its held-out clouds; ||p̂_S − p_S|| and ||p_S − p_T|| averaged over "
             "minibatches (clouds) of the training set, mean ± std over seeds. Exact images from "
             "torchtopo.rips_persistence + the saved PersistenceImage.", "",
             "| teacher | student | L_RN | RipsNet R² | "
             + " | ".join(f"‖p̂_S − p_S‖ {e}" for e in entries)
             + " | " + " | ".join(f"‖p_S − p_T‖ {e}" for e in entries) + " |",
             "|---" * (4 + 2 * len(entries)) + "|"]
    for pair_rows in pairs.values():
        by_entry = {e: [r for r in pair_rows if r["distiller"] == e] for e in entries}
        err = {e: [r["student_err"] for r in rs] for e, rs in by_entry.items()}
        means = {e: statistics.mean(v) for e, v in err.items()
                 if v and not any(math.isnan(x) for x in v)}
        best = min(means, key=means.get) if means else None
        cells = [f"**{mean_std(err[e], 5)}**" if e == best else mean_std(err[e], 5)
                 for e in entries]
        cells += [mean_std([r["exact_dist"] for r in by_entry[e]], 5) for e in entries]
        first = pair_rows[0]
        r2 = first.get("ripsnet_r2")
        lines.append(f"| {first['teacher']} | {first['student']} | "
                     f"{first['ripsnet_train_l2']:.5f} | {'–' if r2 is None else f'{r2:.3f}'} | "
                     + " | ".join(cells) + " |")
    paper = [(k, v) for k, v in PAPER_TABLE8.items()
             if any((r["teacher"], r["student"]) == k for r in rows)]
    if paper:
        lines += ["", "Poster (CIFAR-100): L_RN; ||p̂_S − p_S|| student, w/ KD, w/ TopKD", ""]
        lines += [f"- {t} → {s}: {v[0]}; {v[1]}, {v[2]}, {v[3]}" for (t, s), v in paper]
    text = "\n".join(lines) + "\n"
    write_text(text, os.path.join(out_dir, "table8.md"))
    return text


def _pm(row, metric, digits) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_sweep_table(rows: List[Dict[str, Any]], summary: List[Dict[str, Any]],
                      axes: Sequence[str], out_dir: str, title: str = "") -> str:
    """Write an ablation grid's ``runs.csv`` (one row per point and seed), ``sweep.csv`` (one
    row per grid point: the ``axes``, ``n`` and ``<metric>_mean`` / ``_std``) and ``sweep.md``.

    Returns
    -------
    str
        The markdown text.
    """
    if not rows or not summary:
        raise ValueError("rows is empty: nothing to tabulate")
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "runs.csv"), rows)
    write_csv(os.path.join(out_dir, "sweep.csv"), summary)
    n = summary[0]["n"]
    lines = [f"Ablation {title}: mean ± std over {n} seed(s). Top-1 (%) at the best and the last "
             "epoch; ‖p_S − p_T‖ between exact images, ‖p̂_S − p_S‖ the RipsNet's error on the "
             "student, ‖p̂_S − p̂_T‖ the topology term's distance (see topkd.analysis).", "",
             "| " + " | ".join(axes) + " | best top-1 | last top-1 | ‖p_S − p_T‖ | ‖p̂_S − p_S‖ "
             "| ‖p̂_S − p̂_T‖ |", "|---" * (len(axes) + 5) + "|"]
    for row in summary:
        lines.append("| " + " | ".join(f"{row[a]:g}" if isinstance(row[a], float) else str(row[a])
                                       for a in axes) + " | "
                     + " | ".join([_pm(row, "best_acc", 2), _pm(row, "last_acc", 2),
                                   _pm(row, "exact_dist", 4), _pm(row, "student_err", 4),
                                   _pm(row, "approx_dist", 4)]) + " |")
    text = "\n".join(lines) + "\n"
    write_text(text, os.path.join(out_dir, "sweep.md"))
    return text
