"""The documentation: builds warning-free, documents every public name, its examples and
tutorials run, and the tutorial scripts run on small sizes."""

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

import torchtopo

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import torchtopo_api  # noqa: E402

PAGES = {  # page -> the figures drawn into it at build time
    "index": 1,
    "installation": 0,
    "quickstart": 1,
    "concepts": 3,
    "tutorials/index": 0,
    "tutorials/noisy_circles": 2,
    "tutorials/ripsnet": 2,
    "tutorials/topology_loss": 2,
    "tutorials/topkd": 0,
    "api/index": 0,
    "benchmarks": 0,
    "comparison": 0,
}
# One thread: CI has two shared cores, where oversubscribed intra-op threads slow the tutorials'
# small training loops down many times (the numba kernels follow torch's thread count).
ENV = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")


def sphinx(builder: str, out: Path) -> str:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
               "-d", str(out / "doctrees"), str(DOCS), str(out / builder)]
    run = subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert run.returncode == 0, f"sphinx-build -b {builder} failed:\n{run.stdout}\n{run.stderr}"
    return run.stdout + run.stderr


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """Build the HTML, then run the doctest builder on the same (cached) environment."""
    out = tmp_path_factory.mktemp("docs")
    sphinx("html", out)
    sphinx("doctest", out)
    return out


def html(docs: Path, page: str) -> str:
    return (docs / "html" / f"{page}.html").read_text()


def text_of(page: str) -> str:
    """The page's text without tags (highlighted code is split into spans)."""
    return unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.slow
def test_every_page_is_built_with_its_figures(docs):
    for page, figures in PAGES.items():
        text = html(docs, page)
        images = re.findall(r'<img [^>]*src="([^"]+\.png)"', text)
        assert len(images) == figures, (page, images)
        for src in images:
            png = (docs / "html" / page).parent / src
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, png
    # The navigation lists every page, and the tutorials' code is shown next to its figures.
    index = html(docs, "index")
    for page in PAGES:
        if page != "index":
            assert f'href="{page}.html"' in index, page
    assert "fit_ripsnet(net, train_clouds, targets" in text_of(html(docs, "tutorials/ripsnet"))
    assert "topology_loss(features, teacher(theta))" in text_of(html(docs, "tutorials/topology_loss"))


@pytest.mark.slow
def test_markdown_is_rendered_and_benchmarks_are_all_listed(docs):
    benchmarks = html(docs, "benchmarks")
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        assert script.name in benchmarks
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    assert results and benchmarks.count("<table") >= len(results)
    # The TopKD tutorial includes the suite's README as rendered Markdown, not raw text.
    title = (ROOT / "examples" / "topkd" / "README.md").read_text().splitlines()[0].lstrip("# ")
    assert re.search(rf"<h2>{re.escape(title)}<a", html(docs, "tutorials/topkd"))


@pytest.mark.slow
def test_api_reference_documents_every_public_name(docs):
    modules = torchtopo_api.public_modules()
    homes = torchtopo_api._homes(torchtopo, modules)
    api = {page.stem: page.read_text() for page in (docs / "html" / "api").glob("*.html")}
    assert set(api) == {"index", *(m.__name__ for m in modules)}
    documented = {m for text in api.values() for m in re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', text)}
    for module in [torchtopo, *modules]:
        for name in module.__all__:
            home = homes[id(getattr(module, name))]
            assert home in documented, f"{module.__name__}.{name} is not documented (expected at {home})"
            if module is not torchtopo:
                assert f"#{home}" in api[module.__name__] or home == f"{module.__name__}.{name}", (module, name)
    # The docstrings' "Convention:" / "Shape:" blocks are sections, not parameters.
    persistence_image = text_of(api["index"]).split("class torchtopo.PersistenceImage", 1)[1]
    assert "Convention" in persistence_image and "Shape" in persistence_image
    assert "Shape –" not in text_of(api["index"])


@pytest.mark.slow
def test_doctests_of_pages_and_docstrings_pass(docs):
    report = (docs / "doctest" / "output.txt").read_text()
    tests = int(re.search(r"Doctest summary\s+=+\s+(\d+) tests", report).group(1))
    assert tests >= 100 and "0 failures in tests" in report, report[-2000:]
    for page in ("installation", "quickstart", "concepts"):
        assert f"Document: {page}" in report


def test_noisy_circles_script_runs_on_a_small_batch(tmp_path):
    script = ROOT / "examples" / "noisy_circles.py"
    run = subprocess.run([sys.executable, str(script), "--batch", "6", "--points", "40", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["kind"] for row in summary] == ["circle", "blob"] * 3
    longest = {kind: [row["longest_h1_bar"] for row in summary if row["kind"] == kind] for kind in ("circle", "blob")}
    assert min(longest["circle"]) > 2 * max(longest["blob"])
    assert (tmp_path / "diagrams.png").read_bytes()[:4] == b"\x89PNG"
