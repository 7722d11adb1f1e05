"""Where a run's files live: one place for every path under a pair's ``out_dir``.

::

    <out_dir>/
      .lock                        the run lock (topkd.storage.RunLock)
      teacher/                     Trainer outputs (final.pt = last-epoch teacher, best.pt = best
                                   test epoch), summary.json
      topology/clouds/             shard_XXXXX.pt (S, m, D) float32 clouds + meta.json
      topology/diagrams/           shard_XXXXX.pt (Diagrams.to_dict of each cloud shard)
      topology/images/             shard_XXXXX.pt (S, P) float32 + vectorizer.json + meta.json
      topology/ripsnet/            ripsnet.pt (the fitted RipsNet and its vectoriser), metrics.json
      students/<entry>/seed<k>/    Trainer outputs and summary.json
      table/                       results.csv, results.json, comparison.md
      analysis/                    Table 8, figures, trajectories

>>> layout = RunLayout("runs/smoke")
>>> layout.shard("clouds", 3)
'runs/smoke/topology/clouds/shard_00003.pt'
>>> layout.student("topkd", 1)
'runs/smoke/students/topkd/seed1'
"""
from __future__ import annotations

import os
from typing import Any, Dict

__all__ = ["RunLayout", "layout", "TOPOLOGY_FOLDERS"]

#: The topology stages' folders, in the order the stages fill them.
TOPOLOGY_FOLDERS = ("clouds", "diagrams", "images", "ripsnet")


class RunLayout:
    """The paths of one pair's run folder ``root`` (nothing is created here).

    Parameters
    ----------
    root : str
        The pair's ``out_dir``.
    """

    def __init__(self, root: str):
        if not isinstance(root, str) or not root:
            raise ValueError(f"root must be a non-empty path, got {root!r}")
        self.root = root

    def __repr__(self) -> str:
        return f"RunLayout({self.root!r})"

    @property
    def teacher(self) -> str:
        """The teacher stage's folder."""
        return os.path.join(self.root, "teacher")

    @property
    def teacher_final(self) -> str:
        """The trained teacher's weights."""
        return os.path.join(self.teacher, "final.pt")

    @property
    def teacher_best(self) -> str:
        """The trained teacher's weights at its best test epoch (the official TopKD code's
        ``<model>_best.pth``)."""
        return os.path.join(self.teacher, "best.pt")

    def topology(self, kind: str) -> str:
        """The folder of a topology output: one of :data:`TOPOLOGY_FOLDERS`."""
        if kind not in TOPOLOGY_FOLDERS:
            raise ValueError(f"kind must be one of {TOPOLOGY_FOLDERS}, got {kind!r}")
        return os.path.join(self.root, "topology", kind)

    def shard(self, kind: str, k: int) -> str:
        """Shard ``k`` of ``clouds``, ``diagrams`` or ``images``."""
        return os.path.join(self.topology(kind), f"shard_{k:05d}.pt")

    def meta(self, kind: str) -> str:
        """The ``meta.json`` that marks ``clouds`` or ``images`` complete."""
        return os.path.join(self.topology(kind), "meta.json")

    @property
    def vectorizer(self) -> str:
        """The fitted vectoriser's parameters."""
        return os.path.join(self.topology("images"), "vectorizer.json")

    @property
    def ripsnet(self) -> str:
        """The fitted RipsNet (with its vectoriser)."""
        return os.path.join(self.topology("ripsnet"), "ripsnet.pt")

    @property
    def ripsnet_metrics(self) -> str:
        """The RipsNet stage's measures."""
        return os.path.join(self.topology("ripsnet"), "metrics.json")

    @property
    def students(self) -> str:
        """The folder of every student run."""
        return os.path.join(self.root, "students")

    def student(self, entry: str, seed: int) -> str:
        """One student run's folder."""
        return os.path.join(self.students, entry, f"seed{seed}")

    @property
    def table(self) -> str:
        """The pair's result table."""
        return os.path.join(self.root, "table")

    @property
    def analysis(self) -> str:
        """The analyses' outputs."""
        return os.path.join(self.root, "analysis")


def layout(cfg: Dict[str, Any]) -> RunLayout:
    """The :class:`RunLayout` of a pair config (its ``out_dir``)."""
    return RunLayout(cfg["out_dir"])
