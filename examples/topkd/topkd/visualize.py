"""Pictures of what TopKD transfers, each with numbers that do not depend on the picture.

- :func:`umap_analysis`: UMAP of the penultimate features of the teacher and of students (KD,
  TopKD, ...) on the same test images, coloured by class, as in the poster, with a class
  separation score per model in feature space (k-NN class agreement and silhouette), so that
  "TopKD gathers points by class more effectively" is measured, not only shown.
- :func:`diagram_comparison`: persistence diagrams and images of teacher and student clouds
  (the same test images) side by side.
- :func:`track_student`: a student trained with a :class:`TopologyLogger` attached, which logs
  the student's clouds and exact images on fixed test clouds every few epochs, and
  :func:`plot_trajectory`, the figure of its diagram approaching the teacher's.

Figures are written as PNG (fixed size, see each function) and to TensorBoard
(``<out_dir>/analysis/tb``). UMAP needs ``umap-learn`` (``pip install umap-learn``), an
optional dependency imported only by :func:`umap_embedding`.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .analysis import (analysis_dir, as_clouds, cloud_loader,
                       cloud_projection, exact_images, load_pair_topology, load_student_run,
                       rips_diagrams, whole_clouds)
from .data import make_loader
from .engine import select_device
from .pipeline import student_trainer
from .report import write_csv
from .storage import atomic_save, load_file, write_json
from .suites import load_teacher, suite_of

#: Dots per inch of every PNG written here.
DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str, writer=None, tag: Optional[str] = None, step: int = 0) -> str:
    """Write ``fig`` as a PNG of exactly ``figsize * DPI`` pixels (and to TensorBoard)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    if writer is not None:
        writer.add_figure(tag, fig, step, close=False)
    _pyplot().close(fig)
    return path


def _writer(cfg):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(analysis_dir(cfg), "tb"))


def _save_analysis_figure(cfg, fig, filename: str, tag: str) -> str:
    """Write ``fig`` as ``<out_dir>/analysis/<filename>`` and to the pair's TensorBoard under
    ``tag``; returns the PNG's path."""
    writer = _writer(cfg)
    try:
        return _save(fig, os.path.join(analysis_dir(cfg), filename), writer, tag)
    finally:
        writer.close()


# -------------------------------------------------------------------- features and scores

@torch.no_grad()
def penultimate_features(model: nn.Module, loader, device: torch.device,
                         max_images: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Pooled penultimate features of a zoo model over a loader, in eval mode.

    Parameters
    ----------
    model : nn.Module
        Maps images ``(B, 3, H, W)`` to ``(logits, features)``.
    loader : DataLoader
        Yields ``(images, labels, ...)``.
    device : torch.device
    max_images : int, optional
        Stop after this many images.

    Returns
    -------
    features : numpy.ndarray
        ``(N, D)`` float32.
    labels : numpy.ndarray
        ``(N,)`` int64.
    """
    mode = model.training
    model.eval()
    feats, labels, n = [], [], 0
    for batch in loader:
        images, targets = batch[0], batch[1]
        feats.append(model(images.to(device))[1]["pooled"].float().cpu())
        labels.append(targets)
        n += targets.shape[0]
        if max_images is not None and n >= max_images:
            break
    model.train(mode)
    if n == 0:
        raise ValueError("loader is empty")
    return (torch.cat(feats)[:max_images].numpy(), torch.cat(labels)[:max_images].numpy())


def class_agreement(features: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each point's ``k`` nearest neighbours (Euclidean, itself excluded)
    that share its class: 1 when classes form separate clumps, about the largest class
    frequency for features unrelated to the class.

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, D)``.
    labels : numpy.ndarray
        ``(N,)``.
    k : int
        Neighbours, ``1 <= k < N``.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    from sklearn.neighbors import NearestNeighbors

    features, labels = np.asarray(features), np.asarray(labels)
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"features must be (N, D) and labels (N,), got {features.shape} and "
                         f"{labels.shape}")
    if not isinstance(k, int) or not 1 <= k < features.shape[0]:
        raise ValueError(f"k must be an int in [1, N - 1] = [1, {features.shape[0] - 1}], got {k!r}")
    index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(
        features, return_distance=False)
    # drop each point itself (the first neighbour, or wherever a duplicate put it)
    neighbours = np.array([[j for j in row if j != i][:k] for i, row in enumerate(index)])
    return float((labels[neighbours] == labels[:, None]).mean())


def separation_scores(features: np.ndarray, labels: np.ndarray, k: int = 10) -> Dict[str, float]:
    """Class separation in feature space: ``knn_agreement`` (:func:`class_agreement`) and
    ``silhouette`` (scikit-learn's mean silhouette coefficient, in ``[-1, 1]``)."""
    from sklearn.metrics import silhouette_score

    return {"knn_agreement": class_agreement(features, labels, k),
            "silhouette": float(silhouette_score(features, labels))}


def umap_embedding(features: np.ndarray, seed: int = 0, n_neighbors: int = 15,
                   min_dist: float = 0.1) -> np.ndarray:
    """2-D UMAP embedding of features.

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, D)``.
    seed : int
        UMAP's ``random_state`` (deterministic, single-threaded).
    n_neighbors : int
    min_dist : float

    Returns
    -------
    numpy.ndarray
        ``(N, 2)`` float32.

    Raises
    ------
    ImportError
        When umap-learn is not installed (with the command that installs it).
    """
    try:
        import umap
    except ImportError as err:
        raise ImportError("the UMAP figure needs umap-learn, an optional dependency: "
                          "pip install umap-learn") from err
    return umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed
                     ).fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


def plot_embeddings(embeddings: Dict[str, np.ndarray], labels: np.ndarray,
                    scores: Optional[Dict[str, Dict[str, float]]] = None):
    """One scatter panel per model, coloured by class.

    Parameters
    ----------
    embeddings : dict of str to numpy.ndarray
        Model name to ``(N, 2)``, the same ``N`` images for every model.
    labels : numpy.ndarray
        ``(N,)``.
    scores : dict, optional
        Model name to :func:`separation_scores`, shown in the titles.

    Returns
    -------
    matplotlib.figure.Figure
        ``4 * len(embeddings)`` by 4 inches (``DPI`` dots per inch when saved).
    """
    plt = _pyplot()
    if not embeddings:
        raise ValueError("embeddings is empty")
    fig, axes = plt.subplots(1, len(embeddings), figsize=(4 * len(embeddings), 4), squeeze=False)
    cmap = "tab10" if int(labels.max()) < 10 else "tab20" if int(labels.max()) < 20 else "hsv"
    for ax, (name, emb) in zip(axes[0], embeddings.items()):
        ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap=cmap, s=4, linewidths=0)
        title = name
        if scores and name in scores:
            title += (f"\nk-NN agreement {scores[name]['knn_agreement']:.3f}, "
                      f"silhouette {scores[name]['silhouette']:.3f}")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _models(cfg: Dict[str, Any], entries: Sequence[str], seed: int, device):
    train, _ = suite_of(cfg).datasets(cfg)
    teacher = load_teacher(cfg, device)
    models = {f"teacher ({cfg['teacher']['arch']})": teacher}
    for entry in entries:
        distiller, _ = load_student_run(cfg, entry, seed, teacher, len(train))
        models[f"{entry} ({cfg['student']['arch']}, seed {seed})"] = distiller.student.to(device)
    return models


def umap_analysis(cfg: Dict[str, Any], entries: Sequence[str] = ("kd", "topkd"), seed: int = 0,
                  max_images: int = 1000, k: int = 10, random_baseline: bool = True
                  ) -> Dict[str, Dict[str, float]]:
    """UMAP of the teacher's and the students' penultimate features on the same test images.

    Writes ``<out_dir>/analysis/umap.png`` (one 4×4-inch panel per model), ``umap_scores.csv``
    / ``.json`` (:func:`separation_scores` per model) and the figure and scores to TensorBoard.

    Parameters
    ----------
    cfg : dict
        A pair config whose teacher and student runs exist.
    entries : sequence of str
        ``compare`` entries of the students.
    seed : int
        Which seed's students.
    max_images : int
        Test images embedded (the first ones, in order).
    k : int
        Neighbours of the k-NN agreement.
    random_baseline : bool
        Also score Gaussian features of the students' width: the agreement of features that
        carry no class information (no panel).

    Returns
    -------
    dict
        Model name to its scores.
    """
    device = select_device(cfg["device"])
    models = _models(cfg, entries, seed, device)
    _, test = suite_of(cfg).datasets(cfg)
    loader = make_loader(test, 256, False, cfg["dataset"]["num_workers"])
    features, labels = {}, None
    for name, model in models.items():
        features[name], labels = penultimate_features(model, loader, device, max_images)
    scores = {name: separation_scores(f, labels, k) for name, f in features.items()}
    if random_baseline:
        width = next(iter(features.values())).shape[1]
        rng = np.random.default_rng(seed)
        scores["random features"] = separation_scores(
            rng.standard_normal((len(labels), width)).astype(np.float32), labels, k)
    embeddings = {name: umap_embedding(f, seed) for name, f in features.items()}
    out = analysis_dir(cfg)
    writer = _writer(cfg)
    try:
        _save(plot_embeddings(embeddings, labels, scores), os.path.join(out, "umap.png"),
              writer, "umap")
        for name, s in scores.items():
            for key, value in s.items():
                writer.add_scalar(f"separation/{key}/{name}", value, 0)
    finally:
        writer.close()
    write_json({"k": k, "num_images": int(len(labels)), "scores": scores},
               os.path.join(out, "umap_scores.json"))
    write_csv(os.path.join(out, "umap_scores.csv"),
              [{"model": name, **s} for name, s in scores.items()])
    return scores


# ----------------------------------------------------------------- diagrams and images

def split_image(flat: torch.Tensor, vectorizer) -> List[Tuple[int, torch.Tensor]]:
    """Split a flattened image into its homology dimensions.

    Parameters
    ----------
    flat : torch.Tensor
        ``(P,)``, ``P = vectorizer.num_features``.
    vectorizer : torchtopo.PersistenceImage

    Returns
    -------
    list of (int, torch.Tensor)
        ``(d, image)`` per dimension of ``vectorizer.dims``: ``(n_persistence,)`` for an H0
        curve, ``(n_persistence, n_birth)`` otherwise.
    """
    if flat.shape != (vectorizer.num_features,):
        raise ValueError(f"flat must be ({vectorizer.num_features},), got {tuple(flat.shape)}")
    n_birth, n_pers = vectorizer.resolution
    out, start = [], 0
    for d in vectorizer.dims:
        curve = d == 0 and vectorizer.h0 == "curve"
        size = n_pers if curve else n_birth * n_pers
        img = flat[start:start + size]
        out.append((d, img if curve else img.reshape(n_pers, n_birth)))
        start += size
    return out


def _plot_image(ax, img: torch.Tensor, im_range, title: str, color: Optional[str] = None):
    from torchtopo.plot import plot_persistence_image

    if img.dim() == 1 and color is not None:
        plot_persistence_image(img, ax, im_range=im_range)
        ax.lines[-1].set_color(color)
    else:
        plot_persistence_image(img, ax, im_range=im_range, colorbar=False)
    ax.set_title(title, fontsize=9)


def probe_images(cfg: Dict[str, Any], num_clouds: int) -> torch.Tensor:
    """The first ``num_clouds * m`` test images, in order: ``(num_clouds * m, 3, H, W)``.

    Raises
    ------
    ValueError
        When the test set holds fewer images.
    """
    m = cfg["topology"]["cloud_size"]
    images = whole_clouds(next(iter(cloud_loader(cfg, False, num_clouds)))[0], m)
    if images.shape[0] < num_clouds * m:
        raise ValueError(f"num_clouds={num_clouds}: the test set holds {images.shape[0] // m} "
                         f"clouds of {m} images")
    return images


@torch.no_grad()
def probe_clouds(cfg: Dict[str, Any], models: Dict[str, nn.Module], num_clouds: int,
                 device) -> Dict[str, torch.Tensor]:
    """Clouds of the first ``num_clouds * m`` test images (in order) for each model.

    Parameters
    ----------
    models : dict of str to nn.Module
        Name to a model mapping images to ``(logits, features)``, or to a ``(model,
        projection)`` pair whose projection is applied to the pooled features.

    Returns
    -------
    dict of str to torch.Tensor
        ``(num_clouds, m, D)`` float32 CPU clouds per model.
    """
    images = probe_images(cfg, num_clouds).to(device)
    m = cfg["topology"]["cloud_size"]
    out = {}
    for name, entry in models.items():
        model, projection = entry if isinstance(entry, tuple) else (entry, None)
        mode = model.training
        model.eval()
        clouds = as_clouds(model(images)[1]["pooled"], m)
        model.train(mode)
        out[name] = (clouds if projection is None else projection(clouds)).float().cpu()
    return out


def diagram_comparison(cfg: Dict[str, Any], entry: str = "topkd", seed: int = 0,
                       num_clouds: int = 2) -> str:
    """Persistence diagrams and images of the teacher's and a student's clouds of the same
    test images, side by side: one row per cloud; columns teacher diagram, student diagram,
    then per homology dimension the teacher's and the student's image (a 1-D H0 image as one
    panel with both curves).

    Writes ``<out_dir>/analysis/diagrams_<entry>_seed<k>.png`` (``3.2`` inches per column and
    per row) and the figure to TensorBoard.

    Returns
    -------
    str
        The PNG's path.
    """
    from torchtopo.plot import plot_diagram

    plt = _pyplot()
    device = select_device(cfg["device"])
    train, _ = suite_of(cfg).datasets(cfg)
    teacher = load_teacher(cfg, device)
    distiller, _ = load_student_run(cfg, entry, seed, teacher, len(train))
    distiller.to(device)
    _, vectorizer = load_pair_topology(cfg)
    clouds = probe_clouds(cfg, {"teacher": teacher,
                                "student": (distiller.student, cloud_projection(distiller))},
                          num_clouds, device)
    max_dim = max(vectorizer.dims)
    dgms = {k: rips_diagrams(c, max_dim) for k, c in clouds.items()}
    images = {k: exact_images(c, vectorizer) for k, c in clouds.items()}
    panels = [(d, d == 0 and vectorizer.h0 == "curve") for d in vectorizer.dims]
    ncols = 2 + sum(1 if curve else 2 for _, curve in panels)
    fig, axes = plt.subplots(num_clouds, ncols, figsize=(3.2 * ncols, 3.2 * num_clouds),
                             squeeze=False)
    for i in range(num_clouds):
        row = axes[i]
        for j, who in enumerate(("teacher", "student")):
            plot_diagram(dgms[who], i, ax=row[j], size=8, legend=i == 0)
            row[j].set_title(f"{who} cloud {i}: diagram", fontsize=9)
        col = 2
        t_parts = split_image(images["teacher"][i], vectorizer)
        s_parts = split_image(images["student"][i], vectorizer)
        for k, ((d, curve), (_, t_img), (_, s_img)) in enumerate(zip(panels, t_parts, s_parts)):
            im_range = vectorizer.range_[k]
            if curve:
                _plot_image(row[col], t_img, im_range, f"H{d} image: teacher vs student", "black")
                _plot_image(row[col], s_img, im_range, f"H{d} image: teacher (black) vs "
                                                       f"student (red)", "C3")
                col += 1
            else:
                _plot_image(row[col], t_img, im_range, f"teacher H{d} image")
                _plot_image(row[col + 1], s_img, im_range, f"student H{d} image")
                col += 2
    fig.suptitle(f"{cfg['name']}: teacher vs {entry} student (seed {seed}), "
                 f"||p_S - p_T|| = {float((images['student'] - images['teacher']).norm(dim=1).mean()):.4f}",
                 fontsize=10)
    fig.tight_layout()
    return _save_analysis_figure(cfg, fig, f"diagrams_{entry}_seed{seed}.png",
                                 f"diagrams/{entry}/seed{seed}")


# --------------------------------------------------------------------------- trajectory

class TopologyLogger:
    """Log a student's clouds and exact images on fixed test clouds every few epochs.

    Attach it to a :class:`topkd.engine.Trainer` with :meth:`attach`: before training (epoch
    0), then after every ``every``-th training epoch and the last, it records the student's clouds ``(n, m, D)``
    and exact images ``(n, P)`` (through the distiller's projection when it has one) in
    ``path`` (tensors only, rewritten atomically), and ``||p_S - p_T||`` to TensorBoard. Entries
    beyond the epoch a resumed trainer restarts from are dropped, so a resumed run logs as an
    uninterrupted one.

    Parameters
    ----------
    probe_images : torch.Tensor
        ``(n * m, 3, H, W)`` test images, ``m`` consecutive images per cloud.
    teacher_clouds : torch.Tensor
        ``(n, m, D_t)`` the teacher's clouds of the same images.
    teacher_images : torch.Tensor
        ``(n, P)`` their exact images.
    vectorizer : torchtopo.PersistenceImage
    cloud_size : int
        ``m``.
    path : str
        The ``.pt`` log.
    every : int
        Log period in epochs.
    """

    def __init__(self, probe_images: torch.Tensor, teacher_clouds: torch.Tensor,
                 teacher_images: torch.Tensor, vectorizer, cloud_size: int, path: str,
                 every: int = 1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if probe_images.shape[0] != cloud_size * teacher_images.shape[0]:
            raise ValueError(f"probe_images must hold cloud_size * n = "
                             f"{cloud_size * teacher_images.shape[0]} images, got "
                             f"{probe_images.shape[0]}")
        self.probe_images, self.teacher_images = probe_images, teacher_images
        self.teacher_clouds = teacher_clouds
        self.vectorizer, self.cloud_size, self.path, self.every = (vectorizer, cloud_size, path,
                                                                   every)
        self.log: Dict[str, Any] = {"epochs": [], "clouds": [], "images": []}
        if os.path.isfile(path):
            saved = load_file(path, "analysis")
            self.log = {"epochs": saved["epochs"].tolist(), "clouds": list(saved["clouds"]),
                        "images": list(saved["images"])}

    def attach(self, trainer) -> None:
        """Log after the trainer's epochs (wraps its ``train_epoch``); drops logged epochs
        after the one the trainer restarts from."""
        train_epoch = trainer.train_epoch

        def logged_train_epoch():
            keep = [i for i, e in enumerate(self.log["epochs"]) if e <= trainer.epoch]
            self.log = {k: [v[i] for i in keep] for k, v in self.log.items()}
            if trainer.epoch == 0:
                self.record(trainer.distiller, 0, trainer.device)
            row = train_epoch()
            epoch = trainer.epoch + 1
            if epoch % self.every == 0 or epoch == trainer.epochs:
                self.record(trainer.distiller, epoch, trainer.device)
            return row

        trainer.train_epoch = logged_train_epoch

    @torch.no_grad()
    def record(self, distiller, epoch: int, device) -> float:
        """Log the distiller's student at ``epoch``; returns the mean ``||p_S - p_T||``."""
        from torch.utils.tensorboard import SummaryWriter

        student = distiller.student
        mode = student.training
        student.eval()
        clouds = as_clouds(student(self.probe_images.to(device))[1]["pooled"], self.cloud_size)
        student.train(mode)
        projection = cloud_projection(distiller)
        if projection is not None:
            clouds = projection(clouds)
        clouds = clouds.float().cpu()
        images = exact_images(clouds, self.vectorizer)
        self.log["epochs"].append(epoch)
        self.log["clouds"].append(clouds)
        self.log["images"].append(images)
        atomic_save({"epochs": torch.tensor(self.log["epochs"]),
                     "clouds": torch.stack(self.log["clouds"]),
                     "images": torch.stack(self.log["images"]),
                     "teacher_clouds": self.teacher_clouds,
                     "teacher_images": self.teacher_images}, self.path)
        dist = float((images - self.teacher_images).norm(dim=1).mean())
        writer = SummaryWriter(os.path.join(os.path.dirname(self.path), "tb"))
        writer.add_scalar("topology/exact_dist", dist, epoch)
        writer.close()
        return dist


def track_student(cfg: Dict[str, Any], entry: str = "topkd", seed: int = 0, every: int = 1,
                  num_clouds: int = 2, stop_after: Optional[int] = None) -> str:
    """Train a student of ``entry`` as the ``student`` stage does, with a
    :class:`TopologyLogger` on the first ``num_clouds`` test clouds, into
    ``<out_dir>/analysis/trajectory/<entry>/seed<k>/`` (resumable; skipped when done).
    ``stop_after`` stops after that many epochs (an interruption, as ``Trainer.fit``'s).

    Returns
    -------
    str
        The log ``trajectory.pt``: ``epochs (E,)``, ``clouds (E, n, m, D)``, ``images (E, n,
        P)`` of the student, ``teacher_clouds (n, m, D_t)`` and ``teacher_images (n, P)``.
    """
    out = os.path.join(analysis_dir(cfg), "trajectory", entry, f"seed{seed}")
    path = os.path.join(out, "trajectory.pt")
    if os.path.isfile(os.path.join(out, "summary.json")):
        return path
    device = select_device(cfg["device"])
    teacher = load_teacher(cfg, device)
    _, vectorizer = load_pair_topology(cfg)
    images = probe_images(cfg, num_clouds)
    teacher_clouds = probe_clouds(cfg, {"teacher": teacher}, num_clouds, device)["teacher"]
    logger = TopologyLogger(images, teacher_clouds, exact_images(teacher_clouds, vectorizer),
                            vectorizer, cfg["topology"]["cloud_size"], path, every)
    trainer = student_trainer(cfg, entry, seed, out)
    logger.attach(trainer)
    trainer.fit(resume=True, stop_after=stop_after)
    return path


def plot_trajectory(path: str, vectorizer, cloud: int = 0, title: str = ""):
    """The student's diagram approaching the teacher's over training.

    Panels: the H0 deaths of the student's cloud ``cloud`` at each logged epoch (sorted,
    colour = epoch) against the teacher's (dashed); the student's image at each logged epoch against
    the teacher's (the first dimension's curve, or its 2-D image averaged over birth);
    ``||p_S - p_T||`` per logged epoch (mean over the probe clouds).

    Returns
    -------
    matplotlib.figure.Figure
        12 by 4 inches.
    """
    plt = _pyplot()
    log = load_file(path, "analysis")
    epochs, clouds, images = log["epochs"].tolist(), log["clouds"], log["images"]
    teacher = log["teacher_images"]
    if not epochs:
        raise ValueError(f"{path!r} holds no logged epoch")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    cmap = plt.get_cmap("viridis")
    colors = [cmap(i / max(len(epochs) - 1, 1)) for i in range(len(epochs))]
    def deaths(c):
        return np.sort(rips_diagrams(c.unsqueeze(0), 0).to_list(0)[0][:, 1].numpy())[::-1]

    for e, color in zip(range(len(epochs)), colors):
        axes[0].plot(deaths(clouds[e, cloud]), color=color, label=f"epoch {epochs[e]}")
    axes[0].plot(deaths(log["teacher_clouds"][cloud]), color="black", lw=2, ls="--",
                 label="teacher")
    axes[0].set_xlabel("H0 bar rank")
    axes[0].set_ylabel("death (edge length)")
    axes[0].set_title(f"H0 deaths, cloud {cloud}: student per epoch vs teacher", fontsize=9)
    axes[0].legend(fontsize=7)
    def profile(flat):  # the first dimension's image over persistence (2-D: mean over birth)
        img = split_image(flat, vectorizer)[0][1]
        return (img if img.dim() == 1 else img.mean(1)).numpy()

    for e, color in zip(range(len(epochs)), colors):
        axes[1].plot(profile(images[e, cloud]), color=color)
    axes[1].plot(profile(teacher[cloud]), color="black", lw=2, ls="--", label="teacher")
    axes[1].set_xlabel(f"H{vectorizer.dims[0]} image: persistence pixel")
    axes[1].set_title("student image per epoch vs teacher (dashed)", fontsize=9)
    axes[1].legend(fontsize=7)
    dist = (images - teacher.unsqueeze(0)).norm(dim=2).mean(1).numpy()
    axes[2].plot(epochs, dist, marker="o")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("||p_S - p_T||")
    axes[2].set_title("exact image distance to the teacher", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def trajectory_figure(cfg: Dict[str, Any], entry: str = "topkd", seed: int = 0, every: int = 1,
                      num_clouds: int = 2) -> str:
    """:func:`track_student` then :func:`plot_trajectory`, written to
    ``<out_dir>/analysis/trajectory_<entry>_seed<k>.png`` (1200×400 px) and TensorBoard.

    Returns
    -------
    str
        The PNG's path.
    """
    path = track_student(cfg, entry, seed, every, num_clouds)
    _, vectorizer = load_pair_topology(cfg)
    fig = plot_trajectory(path, vectorizer, 0, f"{cfg['name']}: {entry} student (seed {seed}) "
                                               f"approaching the teacher's topology")
    return _save_analysis_figure(cfg, fig, f"trajectory_{entry}_seed{seed}.png",
                                 f"trajectory/{entry}/seed{seed}")
