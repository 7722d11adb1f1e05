"""torchtopo.plot: what is drawn (artists, limits, labels) and what lands in the PNG."""

import io
import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from torchtopo import Diagrams, rips_persistence  # noqa: E402
from torchtopo.plot import plot_barcode, plot_diagram, plot_persistence_image, plot_ripsnet_fit  # noqa: E402
from torchtopo.vectorize import PersistenceImage, persistence_curve, persistence_image  # noqa: E402


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    """A plotting function must never call show(); every test closes what it opened."""

    def show(*args, **kwargs):
        raise AssertionError("torchtopo.plot called plt.show()")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


def circle(n: int, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=-1)


def by_gid(artists, gid):
    found = [a for a in artists if a.get_gid() == gid]
    assert len(found) == 1, [a.get_gid() for a in artists]
    return found[0]


def save_png(fig, path):
    """Save at the figure's dpi, so display coordinates are PNG pixels (origin bottom-left)."""
    fig.savefig(path, dpi=fig.dpi)
    png = mpimg.imread(path)[..., :3]
    width, height = fig.canvas.get_width_height()
    assert png.shape[:2] == (height, width)
    return png


def pixel(png, ax, x, y):
    """RGB of the PNG at data point (x, y) of ``ax``."""
    column, row = ax.transData.transform((x, y))  # pixel i covers [i, i + 1)
    return png[png.shape[0] - 1 - math.floor(row), math.floor(column)]


# --------------------------------------------------------------------------- plot_diagram


def test_diagram_points_infinity_and_png(tmp_path):
    dgm = rips_persistence(circle(12), max_dim=1, keep_infinite=True)
    ax = plot_diagram(dgm)
    png = save_png(ax.figure, tmp_path / "diagram.png")

    h0, h1 = dgm.to_list(0)[0].numpy(), dgm.to_list(1)[0].numpy()
    assert [c.get_gid() for c in ax.collections] == ["H0", "H0-infinite", "H1"]
    finite0 = h0[np.isfinite(h0[:, 1])]
    np.testing.assert_allclose(by_gid(ax.collections, "H0").get_offsets(), finite0)
    np.testing.assert_allclose(by_gid(ax.collections, "H1").get_offsets(), h1)
    assert len(finite0) == 11 and len(h1) == 1

    # The infinite H0 bar sits on the dashed infinity line, 10% of the finite range above it.
    hi = max(h0[np.isfinite(h0)].max(), h1.max())
    (inf_birth, inf_level), = by_gid(ax.collections, "H0-infinite").get_offsets()
    assert inf_birth == 0 and inf_level == pytest.approx(1.1 * hi)
    assert by_gid(ax.lines, "infinity").get_ydata()[0] == pytest.approx(inf_level)
    assert ax.get_yticks()[-1] == pytest.approx(inf_level)
    assert ax.get_yticklabels()[-1].get_text() == r"$+\infty$"
    assert all(t <= hi for t in ax.get_yticks()[:-1])

    # Equal square limits from 0 to just above the infinity line, the diagonal across them.
    assert ax.get_xlim() == ax.get_ylim()
    lo, top = ax.get_xlim()
    assert lo < 0 < inf_level < top
    diagonal = by_gid(ax.lines, "diagonal")
    np.testing.assert_allclose(diagonal.get_xdata(), diagonal.get_ydata())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("birth", "death")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["$H_0$", "$H_1$"]

    # The PNG shows the H1 point in H1's colour and the infinite marker in H0's colour.
    np.testing.assert_allclose(pixel(png, ax, *h1[0]), to_rgb("C1"), atol=0.05)
    np.testing.assert_allclose(pixel(png, ax, 0.0, inf_level + 0.004 * top), to_rgb("C0"), atol=0.05)
    assert not np.allclose(pixel(png, ax, 0.5 * hi, 0.25 * hi), to_rgb("C1"), atol=0.05)  # empty region


def test_diagram_selects_batch_index_and_dims_ignoring_padding(tmp_path):
    clouds = torch.zeros(3, 16, 2, dtype=torch.float64)
    clouds[0] = circle(16)
    clouds[1, :8] = circle(8, radius=2.0)
    clouds[2] = circle(16, radius=3.0)
    mask = torch.ones(3, 16, dtype=torch.bool)
    mask[1, 8:] = False
    dgm = rips_persistence(clouds, max_dim=1, mask=mask)
    ax = plot_diagram(dgm, index=1, dims=1, legend=False)
    save_png(ax.figure, tmp_path / "h1.png")

    assert [c.get_gid() for c in ax.collections] == ["H1"]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), dgm.to_list(1)[1].numpy())
    assert ax.get_legend() is None
    assert not any(line.get_gid() == "infinity" for line in ax.lines)
    # The limits follow the drawn diagram (radius 2), not the other clouds of the batch.
    death = float(dgm.to_list(1)[1][0, 1])
    assert ax.get_ylim()[1] == pytest.approx(1.1 * death + 0.05 * death)


def test_diagram_on_given_axes_and_unbatched(tmp_path):
    fig, (left, right) = plt.subplots(1, 2)
    dgm = rips_persistence(circle(6), max_dim=0)
    assert not dgm.is_batched
    assert plot_diagram(dgm, ax=right) is right
    assert len(right.collections) == 1 and len(left.collections) == 0
    assert len(right.collections[0].get_offsets()) == 5
    save_png(fig, tmp_path / "given.png")


def test_empty_diagram_draws_nothing_but_axes(tmp_path):
    dgm = Diagrams.from_list([[torch.zeros(0, 2)], [torch.zeros(0, 2)]])
    ax = plot_diagram(dgm)
    assert [len(c.get_offsets()) for c in ax.collections] == [0, 0]
    assert ax.get_xlim() == pytest.approx((-0.05, 1.15))
    ax = plot_barcode(dgm)
    assert [len(c.get_segments()) for c in ax.collections] == [0, 0]
    save_png(ax.figure, tmp_path / "empty.png")


# --------------------------------------------------------------------------- plot_barcode


def test_barcode_segments_rows_and_infinite_bar(tmp_path):
    dgm = Diagrams.from_list([
        [torch.tensor([[0.0, 0.5], [0.0, 0.25], [0.0, math.inf]])],
        [torch.tensor([[0.75, 1.0]])],
    ])
    ax = plot_barcode(dgm)
    png = save_png(ax.figure, tmp_path / "barcode.png")

    assert [c.get_gid() for c in ax.collections] == ["H0", "H0-infinite", "H1"]
    # H0 sorted by (birth, death) then the infinite one, then H1: rows 0, 1, 2, 3 from the top.
    segments = {c.get_gid(): [s.tolist() for s in c.get_segments()] for c in ax.collections}
    inf_level = 1.0 + 0.1 * 1.0
    assert segments["H0"] == [[[0.0, 0.0], [0.25, 0.0]], [[0.0, 1.0], [0.5, 1.0]]]
    assert segments["H0-infinite"] == [[[0.0, 2.0], [pytest.approx(inf_level), 2.0]]]
    assert segments["H1"] == [[[0.75, 3.0], [1.0, 3.0]]]
    assert by_gid(ax.lines, "infinity").get_xdata()[0] == pytest.approx(inf_level)
    assert ax.get_xticks()[-1] == pytest.approx(inf_level)
    assert ax.get_xticklabels()[-1].get_text() == r"$+\infty$"
    assert ax.get_ylim() == (3.5, -0.5)  # inverted: the first bar at the top
    assert ax.get_xlim() == pytest.approx((-0.05, inf_level + 0.05))
    assert list(ax.get_yticks()) == []
    assert ax.get_xlabel() == "filtration value (edge length)"

    np.testing.assert_allclose(pixel(png, ax, 0.9, 3.0), to_rgb("C1"), atol=0.05)
    np.testing.assert_allclose(pixel(png, ax, 1.05, 2.0), to_rgb("C0"), atol=0.05)  # past every finite value
    assert not np.allclose(pixel(png, ax, 0.9, 1.0), to_rgb("C0"), atol=0.05)  # beyond the bar's death


def test_barcode_of_rips_batch_matches_pairs(tmp_path):
    generator = torch.Generator().manual_seed(0)
    dgm = rips_persistence(torch.randn(2, 20, 3, generator=generator), max_dim=1)
    ax = plot_barcode(dgm, index=1, linewidth=1.0)
    save_png(ax.figure, tmp_path / "rips_barcode.png")
    for d, collection in enumerate(ax.collections):
        pairs = dgm.to_list(d)[1].numpy()
        drawn = np.array([[s[0, 0], s[1, 0]] for s in collection.get_segments()]).reshape(-1, 2)
        np.testing.assert_allclose(drawn, pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))], rtol=1e-6)
        assert collection.get_linewidth()[0] == 1.0


# --------------------------------------------------------------------------- plot_persistence_image


@pytest.mark.parametrize("convention", ["gudhi", "persim"])
def test_image_extent_origin_and_brightest_pixel(tmp_path, convention):
    dgm = torch.tensor([[0.2, 1.4]])  # one point: birth 0.2, persistence 1.2
    im_range = (0.0, 1.0, 0.0, 2.0)
    img = persistence_image(dgm, im_range=im_range, resolution=(11, 21), bandwidth=0.15, convention=convention)
    ax = plot_persistence_image(img, im_range=im_range, convention=convention)
    png = save_png(ax.figure, tmp_path / f"image_{convention}.png")

    art = ax.images[0]
    assert art.origin == "lower"
    np.testing.assert_allclose(art.get_array(), img.numpy())
    expected = [-0.05, 1.05, -0.05, 2.05] if convention == "gudhi" else [0.0, 1.0, 0.0, 2.0]
    np.testing.assert_allclose(art.get_extent(), expected)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("birth", "persistence")
    assert len(ax.figure.axes) == 2  # the colour bar
    # Persistence grows upwards: the brightest pixel of the PNG is at (birth, persistence) of the point.
    top_colour = np.array(matplotlib.colormaps["viridis"](1.0)[:3])
    np.testing.assert_allclose(pixel(png, ax, 0.2, 1.2), top_colour, atol=0.08)
    assert np.abs(pixel(png, ax, 0.2, 0.3) - top_colour).sum() > 0.5


def test_image_without_range_uses_pixel_indices_and_batch_index(tmp_path):
    pi = PersistenceImage(resolution=(4, 6), bandwidth=0.5, dims=(1,), im_range=(0, 1, 0, 1))
    batch = pi(rips_persistence(torch.randn(3, 10, 2, generator=torch.Generator().manual_seed(1)), max_dim=1))
    ax = plot_persistence_image(batch, index=2, colorbar=False)
    save_png(ax.figure, tmp_path / "indexed.png")
    assert batch.shape == (3, 6, 4)
    np.testing.assert_allclose(ax.images[0].get_array(), batch[2].numpy())
    np.testing.assert_allclose(ax.images[0].get_extent(), [-0.5, 3.5, -0.5, 5.5])
    assert len(ax.figure.axes) == 1


def test_degenerate_birth_range_keeps_a_visible_extent(tmp_path):
    # TopKD's faithful H0 image: every birth is 0, so the fitted birth range is (0, 0).
    dgm = Diagrams.from_list([[torch.tensor([[0.0, 0.5], [0.0, 1.0]])]])
    pi = PersistenceImage.topkd(faithful=True).fit(dgm)
    ax = plot_persistence_image(pi(dgm), index=0, im_range=pi.range_[0])
    save_png(ax.figure, tmp_path / "topkd.png")
    left, right, bottom, top = ax.images[0].get_extent()
    assert (left, right) == (-0.5, 0.5) and bottom < 0.5 < 1.0 < top


@pytest.mark.parametrize("convention", ["gudhi", "persim"])
def test_h0_curve_is_drawn_as_a_curve(tmp_path, convention):
    h0 = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 0.4], [0.0, math.inf]])
    curve = persistence_curve(h0, pers_range=(0.0, 2.0), resolution=9, bandwidth=0.2, convention=convention)
    ax = plot_persistence_image(curve, im_range=(0.0, 0.0, 0.0, 2.0), convention=convention)
    save_png(ax.figure, tmp_path / f"curve_{convention}.png")

    line = by_gid(ax.lines, "curve")
    x = np.linspace(0, 2, 9) if convention == "gudhi" else np.linspace(0.0, 2.0, 10)[:-1] + 2 / 18
    np.testing.assert_allclose(line.get_xdata(), x)
    np.testing.assert_allclose(line.get_ydata(), curve.numpy())
    assert line.get_xdata()[np.argmax(line.get_ydata())] == pytest.approx(1.0, abs=0.12)
    assert len(ax.images) == 0 and (ax.get_xlabel(), ax.get_ylabel()) == ("persistence", "intensity")
    # A 2-number range is the persistence range.
    again = plot_persistence_image(curve, im_range=(0.0, 2.0), convention=convention)
    np.testing.assert_allclose(again.lines[0].get_xdata(), x)


# --------------------------------------------------------------------------- plot_ripsnet_fit


def test_ripsnet_fit_side_by_side_on_a_shared_scale(tmp_path):
    generator = torch.Generator().manual_seed(0)
    true = torch.rand(6, 12, generator=generator)
    predicted = true + 0.1 * torch.randn(6, 12, generator=generator)
    fig = plot_ripsnet_fit(true, predicted, shape=(3, 4), indices=[1, 4], im_range=(0, 1, 0, 2))
    save_png(fig, tmp_path / "fit.png")

    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4 and len(fig.axes) == 6  # 2 rows x (true, predicted) + one colour bar per row
    mse = float(((true[4] - predicted[4]) ** 2).mean())
    assert [ax.get_title() for ax in panels] == ["true #1", f"predicted #1 (MSE {float(((true[1] - predicted[1]) ** 2).mean()):.3g})",
                                                 "true #4", f"predicted #4 (MSE {mse:.3g})"]
    np.testing.assert_allclose(panels[2].images[0].get_array(), true[4].view(3, 4).numpy(), rtol=1e-6)
    np.testing.assert_allclose(panels[3].images[0].get_array(), predicted[4].view(3, 4).numpy(), rtol=1e-6)
    lo, hi = float(torch.minimum(true[4], predicted[4]).min()), float(torch.maximum(true[4], predicted[4]).max())
    for ax in panels[2:]:
        assert ax.images[0].origin == "lower"
        assert ax.images[0].get_clim() == pytest.approx((lo, hi))
    # Left column above right column: side by side.
    assert panels[0].get_position().x0 < panels[1].get_position().x0
    assert panels[0].get_position().y0 > panels[2].get_position().y0


def test_ripsnet_fit_of_curves_shares_y_limits(tmp_path):
    true = torch.rand(3, 10, dtype=torch.float64)
    predicted = 2 * true
    fig = plot_ripsnet_fit(true, predicted, im_range=(0.0, 1.0))
    save_png(fig, tmp_path / "fit_curves.png")
    assert len(fig.axes) == 6
    for row in range(3):
        left, right = fig.axes[2 * row], fig.axes[2 * row + 1]
        np.testing.assert_allclose(left.lines[0].get_ydata(), true[row].numpy())
        np.testing.assert_allclose(right.lines[0].get_ydata(), predicted[row].numpy())
        assert left.get_ylim() == right.get_ylim()
        assert left.get_ylim()[1] > float(predicted[row].max())


@pytest.mark.parametrize("flat", ["predicted", "true"])
def test_ripsnet_fit_pairs_image_targets_with_flat_predictions(tmp_path, flat):
    # Targets as PersistenceImage gives them (B, 20, 20), predictions as RipsNet gives them (B, 400).
    generator = torch.Generator().manual_seed(2)
    true = torch.rand(3, 20, 20, generator=generator)
    predicted = true + 0.1 * torch.randn(3, 20, 20, generator=generator)
    args = (true, predicted.flatten(1)) if flat == "predicted" else (true.flatten(1), predicted)
    fig = plot_ripsnet_fit(*args, indices=[2])
    save_png(fig, tmp_path / "mixed.png")
    left, right = [ax for ax in fig.axes if ax.images]
    np.testing.assert_allclose(left.images[0].get_array(), true[2].numpy(), rtol=1e-6)
    np.testing.assert_allclose(right.images[0].get_array(), predicted[2].numpy(), rtol=1e-6)
    mse = float(((true[2] - predicted[2]) ** 2).mean())
    assert right.get_title() == f"predicted #2 (MSE {mse:.3g})"
    # The same with an explicit, agreeing shape.
    again = plot_ripsnet_fit(*args, indices=[2], shape=(20, 20))
    np.testing.assert_allclose([ax for ax in again.axes if ax.images][1].images[0].get_array(), predicted[2].numpy(),
                               rtol=1e-6)


# --------------------------------------------------------------------------- nothing is clipped


def drawn_texts(fig):
    """Every text drawn on the figure: titles, axis labels, the tick labels inside the view limits
    (matplotlib keeps labels of ticks outside them, undrawn), legends, free texts."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * (hi - lo)
            texts += [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                      if lo - slack <= loc <= hi + slack]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
    return [t for t in texts if t.get_visible() and t.get_text()]


def large_circle_diagrams():
    # Values in the thousands: long tick labels, and an infinite H0 bar with its +inf tick.
    return rips_persistence(1000 * circle(12), max_dim=1, keep_infinite=True)


FIGURES = {
    "diagram": lambda: plot_diagram(large_circle_diagrams()).figure,
    "barcode": lambda: plot_barcode(large_circle_diagrams()).figure,
    "image": lambda: plot_persistence_image(
        1e4 * persistence_image(torch.tensor([[0.0, 1.0], [0.5, 2.0]]), im_range=(0, 1, 0, 2), resolution=(5, 9),
                                bandwidth=0.3), im_range=(0, 1000, 0, 2000)).figure,
    "curve": lambda: plot_persistence_image(
        1e5 * persistence_curve(torch.tensor([[0.0, 1.0]]), pers_range=(0.0, 2.0), resolution=9, bandwidth=0.2),
        im_range=(0.0, 2.0)).figure,
    "ripsnet fit, images": lambda: plot_ripsnet_fit(1e3 * torch.rand(4, 20, 20), torch.rand(4, 400)),
    "ripsnet fit, curves": lambda: plot_ripsnet_fit(1e5 * torch.rand(3, 20), torch.rand(3, 20), im_range=(0, 2)),
}


@pytest.mark.parametrize("name", FIGURES)
def test_a_plain_savefig_keeps_every_text_inside_the_canvas(name):
    fig = FIGURES[name]()
    fig.savefig(io.BytesIO(), format="png")  # plain: no bbox_inches="tight"
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    texts = drawn_texts(fig)
    assert {"birth", "death", "filtration value (edge length)", "persistence", "intensity"} & {t.get_text() for t in texts}
    for text in texts:
        box = text.get_window_extent(renderer)
        assert -0.5 <= box.x0 and box.x1 <= width + 0.5 and -0.5 <= box.y0 and box.y1 <= height + 0.5, (
            text.get_text(), box.extents, (width, height))


# --------------------------------------------------------------------------- errors and laziness


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda d: plot_diagram(d.pairs[0]), TypeError, "Diagrams"),
        (lambda d: plot_diagram(d, index=2), ValueError, "index"),
        (lambda d: plot_barcode(d, dims=2), ValueError, "dims"),
        (lambda d: plot_barcode(d, dims=[]), ValueError, "dims"),
        (lambda d: plot_persistence_image([[0.0]]), TypeError, "image"),
        (lambda d: plot_persistence_image(torch.zeros(2, 3, 4)), ValueError, "index="),
        (lambda d: plot_persistence_image(torch.zeros(3, 4), index=5), ValueError, "index"),
        (lambda d: plot_persistence_image(torch.zeros(3, 4), im_range=(0, 1)), ValueError, "im_range"),
        (lambda d: plot_persistence_image(torch.zeros(3, 4), convention="ripser"), ValueError, "convention"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4), torch.zeros(2, 5)), ValueError, "same number of values"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4), torch.zeros(3, 4)), ValueError, "same number of examples"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4, 5), torch.zeros(2, 19)), ValueError, "predicted_images has 19"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 21), torch.zeros(2, 4, 5)), ValueError, "true_images has 21"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4, 5), torch.zeros(2, 5, 4)), ValueError, "different image"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4, 5), torch.zeros(2, 20), shape=(2, 10)), ValueError,
         "different image"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4), torch.zeros(2, 4), shape=(4,)), ValueError, "shape must be"),
        (lambda d: plot_ripsnet_fit(torch.zeros(0, 4), torch.zeros(0, 4)), ValueError, "B > 0"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2), torch.zeros(2)), ValueError, "true_images must be"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4), torch.zeros(2, 4), shape=(3, 2)), ValueError, "shape"),
        (lambda d: plot_ripsnet_fit(torch.zeros(2, 4), torch.zeros(2, 4), indices=[2]), ValueError, "indices"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    dgm = rips_persistence(torch.randn(2, 5, 2), max_dim=1)
    with pytest.raises(error, match=match):
        call(dgm)


def test_missing_matplotlib_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    dgm = rips_persistence(torch.randn(5, 2), max_dim=0)
    for call in (lambda: plot_diagram(dgm), lambda: plot_barcode(dgm), lambda: plot_persistence_image(torch.zeros(2, 2)),
                 lambda: plot_ripsnet_fit(torch.zeros(1, 2), torch.zeros(1, 2))):
        with pytest.raises(ImportError, match=r"pip install torchtopo\[plot\]"):
            call()


def test_import_does_not_load_matplotlib():
    code = "import sys, torchtopo, torchtopo.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
