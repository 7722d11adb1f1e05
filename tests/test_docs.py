"""The documentation: builds warning-free and offline, documents every public name on its
module's page, says only true things about which backend computes what, its examples and
tutorials run, and the tutorial scripts run on small sizes."""

import ast
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import torch

import torchtopo
from torchtopo import rips_persistence

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import torchtopo_api  # noqa: E402

PAGES = {  # page -> the figures drawn into it at build time
    "index": 1,
    "installation": 0,
    "quickstart": 1,
    "concepts": 3,
    "vectorizations": 1,
    "distances": 1,
    "tutorials/index": 0,
    "tutorials/noisy_circles": 2,
    "tutorials/ripsnet": 2,
    "tutorials/topology_loss": 2,
    "tutorials/cubical": 2,
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


# --------------------------------------------------------------------------- which backend the texts name

_DIM = re.compile(r"\bH_?\{?([0-9])\}?\b|\bdimensions? ([0-9])(?:,? (?:and|or) ([0-9]))?\b|\bmax_dim\s*=+\s*([0-9])"
                  r"|\b(higher) dimensions\b")
_BACKEND = re.compile(r"(?<![\"'])\b(gudhi|natively|native)\b", re.I)  # quoted "gudhi": the option
_ROLE = re.compile(r"\b(uses?|used|using|runs?|by|via|backend|underneath|for|computes?|computed|default|auto)\b|\(")
_NOT_USED = re.compile(r"\b(against|vs|versus|than|compared?|faster|slower|peers?|oracles?|conventions?|agrees?|"
                       r"equals?|match(es)?|reference|truth|tested|without)\b", re.I)
# The explicit option, or the conditional fallback.
_OPTION = re.compile(r"""backend\s*=\s*\\?["']gudhi|without numba""", re.I)
_AUTO = re.compile(r"native for (?:``)?max_dim <= ([0-9])(?:``)?[^.;]*?gudhi otherwise")
MAX_DIM = 3


def backend_claims(text: str) -> list[tuple[str, int, str]]:
    """``(backend, dimension, clause)`` for each clause of ``text`` that says which backend
    computes a homology dimension: "H1 uses gudhi's ...", "gudhi as the H1 backend", "higher
    dimensions use gudhi", "native for ``max_dim <= 1``, gudhi otherwise". The backend must
    stand within three words of the dimension, with no comma or closing bracket between them.
    Clauses about the explicit ``backend="gudhi"`` or about running without numba, and mentions
    of gudhi as a peer or an oracle ("against gudhi", "gudhi's convention"), claim nothing."""
    out = []
    text = re.sub(r"\s+", " ", text)
    for clause in re.split(r"(?<=[.!?])\s+|\s\|\s|\s\* -\s|\s- ", text):
        if _OPTION.search(clause):
            continue
        auto = _AUTO.search(clause)
        if auto:
            top = int(auto.group(1))
            out += [("native" if d <= top else "gudhi", d, clause) for d in range(MAX_DIM + 1)]
            continue
        dims = list(_DIM.finditer(clause))
        for mention in _BACKEND.finditer(clause):
            before, after = clause[:mention.start()].split(), clause[mention.end():].split()
            if not _ROLE.search(" ".join(before[-5:] + after[:5])) or _NOT_USED.search(" ".join(before[-3:] + after[:3])):
                continue
            backend = "native" if mention.group(1).lower().startswith("native") else "gudhi"
            for dim in dims:
                if dim.end() <= mention.start():
                    between = clause[dim.end():mention.start()]
                else:
                    between = clause[mention.end():dim.start()]
                if len(between.split()) > 3 or re.search(r"[,:;)]", between):
                    continue
                if dim.group(5):  # "higher dimensions": those above every dimension named before
                    before = [int(d) for m in _DIM.finditer(clause[:dim.start()]) for d in m.groups()[:4] if d]
                    named = range(max(before, default=0) + 1, MAX_DIM + 1)
                else:
                    named = [int(d) for d in dim.groups()[:4] if d]
                out += [(backend, d, clause) for d in named]
    return out


def auto_backends() -> dict[int, str]:
    """What ``rips_persistence(points, max_dim)`` uses with the default ``backend="auto"``, per
    ``max_dim``: gudhi when the call fails with gudhi unimportable, native otherwise."""
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 1.7]])
    used = {}
    for max_dim in range(MAX_DIM + 1):
        rips_persistence(square, max_dim)  # works with gudhi importable
        saved = sys.modules.get("gudhi")
        sys.modules["gudhi"] = None  # makes `import gudhi` raise ImportError
        try:
            rips_persistence(square, max_dim)
            used[max_dim] = "native"
        except ImportError:
            used[max_dim] = "gudhi"
        finally:
            if saved is None:
                del sys.modules["gudhi"]
            else:
                sys.modules["gudhi"] = saved
    return used


def rendered_texts():
    """``(where, text)`` of everything the docs show: pages, the READMEs they include, the
    scripts' docstrings, the public docstrings."""
    for path in sorted(DOCS.rglob("*")):
        if path.suffix in (".rst", ".md") and "_build" not in path.parts:
            yield path.relative_to(ROOT).as_posix(), path.read_text()
    for name in ("README.md", "benchmarks/README.md", "examples/topkd/README.md"):
        yield name, (ROOT / name).read_text()
    for folder in ("benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            docstring = ast.get_docstring(ast.parse(path.read_text()))
            if docstring:
                yield path.relative_to(ROOT).as_posix(), docstring
    seen = set()
    for module in [torchtopo, *torchtopo_api.public_modules()]:
        for obj in [module, *(getattr(module, name) for name in module.__all__)]:
            members = [obj, *vars(obj).values()] if inspect.isclass(obj) else [obj]
            for member in members:
                docstring = inspect.getdoc(member) if callable(member) or inspect.ismodule(member) else None
                if docstring and id(member) not in seen:
                    seen.add(id(member))
                    yield f"{module.__name__}: {getattr(member, '__qualname__', member.__name__)}", docstring


STALE = [  # sentences the docs once held, when the native H1 backend had become the default
    ("H0 runs natively in torch; H1 uses gudhi's ``flag_persistence_generators`` on the CPU, one cloud per "
     "thread.", {("native", 0), ("gudhi", 1)}),
    ("used by torchtopo itself (gudhi as the H1 backend and as the test oracle, persim and ripser as test "
     "oracles, all of them in :doc:`benchmarks`)", {("gudhi", 1)}),
    ("   * - implementation\n     - Python on torch; gudhi for H1\n     - C++ with Python bindings", {("gudhi", 1)}),
    ("Python on torch (native H0); gudhi for higher dimensions", {("native", 0), ("gudhi", 1), ("gudhi", 2), ("gudhi", 3)}),
    ("- ``exact H0+H1``: the same with H1 (gudhi on the CPU) and a 20 x 20 H1 image;", {("gudhi", 1)}),
    ("the native H0 persistence is written in torch and runs on whatever device the input lives on, and\n"
     "higher dimensions use `gudhi <https://gudhi.inria.fr>`_ on the CPU.",
     {("gudhi", 1), ("gudhi", 2), ("gudhi", 3)}),
    ('''``"auto"``: native for ``max_dim <= 1`` (H1 needs numba), gudhi otherwise.''',
     {("native", 0), ("native", 1), ("gudhi", 2), ("gudhi", 3)}),
]
NO_CLAIM = [
    "clouds/s of H0 and H0+H1 against gudhi, ripser and giotto-ph",
    '''Without numba, H0 runs as tensor operations and ``backend="auto"`` uses gudhi for H1.''',
    '''``backend="gudhi"`` computes H2 and H3 on the CPU.''',
    "H1 images in gudhi's convention match gudhi's H1 images.",
    "Vietoris–Rips persistence: distances, H0 and H1, the gudhi CPU backend, dispatch.",
]


@pytest.mark.parametrize("text, claims", STALE)
def test_backend_claims_are_read_from_the_sentences_that_make_them(text, claims):
    assert {(backend, dim) for backend, dim, _ in backend_claims(text)} == claims


@pytest.mark.parametrize("text", NO_CLAIM)
def test_backend_claims_ignore_peers_options_and_fallbacks(text):
    assert backend_claims(text) == []


def test_no_page_names_a_backend_rips_persistence_does_not_use():
    used = auto_backends()
    assert used[0] == used[1] == "native"  # the library's own claim, checked by the code itself
    wrong = [f"{where}: says {backend} computes H{dim}, but rips_persistence(max_dim={dim}) uses {used[dim]}:\n"
             f"    {clause}"
             for where, text in rendered_texts() for backend, dim, clause in backend_claims(text)
             if used[dim] != backend]
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------------------- the API pages


def test_every_public_module_has_its_page_in_the_toctree():
    pages = {path.stem: path.read_text() for path in (DOCS / "api").glob("*.rst")}
    toctree = pages.pop("index").split(".. toctree::", 1)[1]
    listed = re.findall(r"^   (torchtopo[\w.]*)$", toctree, flags=re.M)
    modules = [m.__name__ for m in torchtopo_api.public_modules()]
    assert sorted(listed) == sorted(pages) == sorted(modules)
    for name, text in pages.items():
        assert f".. module-api:: {name}" in text, name


def test_first_sentence_keeps_markup_and_stops_at_the_first_period():
    first = torchtopo_api.first_sentence
    assert first(["", "Points ``(B, N, D)``. More."]) == "Points ``(B, N, D)``."
    assert first(["Values ``1.5`` and", ":func:`a.b` here. Then."]) == "Values ``1.5`` and :func:`a.b` here."
    assert first(["No period", "", "Next paragraph."]) == "No period"


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
    assert "loss = spurious_loops(image)" in text_of(html(docs, "tutorials/cubical"))


@pytest.mark.slow
def test_benchmarks_page_is_the_readme_the_scripts_and_the_tables(docs):
    page = html(docs, "benchmarks")
    text = text_of(page)
    # The narrative is benchmarks/README.md, rendered: its title is the page's, its sections follow.
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert re.search(r"<h1>Benchmarks<a", page)
    for heading in re.findall(r"^## (.+)$", readme, flags=re.M):
        assert re.search(rf"<h2>{re.escape(heading)}<a", page), heading
    # Every script describes itself in text, not in a grey block: its docstring's first paragraph
    # is a paragraph of the page, its command lines are code.
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py")) + [ROOT / "examples" / "topkd" / "bench_topology.py"]
    paragraphs = " ".join(" ".join(text_of(p).split()) for p in re.findall(r"<p>(.*?)</p>", page, flags=re.S))
    paragraphs = paragraphs.replace("\u2019", "'")  # smart quotes
    for script in scripts:
        assert script.name in text
        first = ast.get_docstring(ast.parse(script.read_text())).split("\n\n")[0]
        assert " ".join(first.split()) in paragraphs
    # Each recorded table is rendered, in a container that lets it scroll sideways.
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    containers = page.split('<div class="wide-table')[1:]
    assert len(containers) == len(results) and all('<div class="table-wrapper' in c.split("</table>")[0]
                                                   for c in containers)
    for table in results:
        assert table.name in text
        assert " ".join(table.read_text().splitlines()[0].split()) in text  # its provenance line
    # The TopKD tutorial includes the suite's README as rendered Markdown, not raw text.
    title = (ROOT / "examples" / "topkd" / "README.md").read_text().splitlines()[0].lstrip("# ")
    assert re.search(rf"<h2>{re.escape(title)}<a", html(docs, "tutorials/topkd"))


@pytest.mark.slow
def test_api_reference_documents_every_public_name(docs):
    modules = torchtopo_api.public_modules()
    homes = torchtopo_api._homes(torchtopo, modules)
    api = {page.stem: page.read_text() for page in (docs / "html" / "api").glob("*.html")}
    assert set(api) == {"index", *(m.__name__ for m in modules)}
    for module in [torchtopo, *modules]:
        page = "index" if module is torchtopo else module.__name__
        for name in module.__all__:
            qualified, home = homes[id(getattr(module, name))]
            # Documented once, on the page of the module that defines it ...
            documented = [p for p, text in api.items() if f'<dt class="sig sig-object py" id="{qualified}">' in text]
            assert documented == [home if home != torchtopo.__name__ else "index"], (module.__name__, name, documented)
            # ... and every page listing it links to that entry from its summary table.
            summary = api[page].split('class="api-summary', 1)[1].split("</table>", 1)[0]
            assert f'#{qualified}"' in summary, (page, name)
    # The docstrings' "Convention:" / "Shape:" blocks are sections, not parameters.
    persistence_image = text_of(api["torchtopo.vectorize"]).split("class torchtopo.PersistenceImage", 1)[1]
    assert "Convention" in persistence_image and "Shape" in persistence_image
    assert "Shape –" not in text_of(api["torchtopo.vectorize"])
    # No page runs to tens of thousands of pixels: the index holds a table, not the entries.
    assert "sig sig-object" not in api["index"]


@pytest.mark.slow
def test_api_pages_render_their_markup(docs):
    api = {page.stem: text_of(page.read_text()) for page in (docs / "html" / "api").glob("*.html")}
    builtin_docs = {inspect.getdoc(t).splitlines()[0] for t in (tuple, list, dict, str, int, float, set, frozenset)}
    for page, text in api.items():
        assert "``" not in text, (page, text[text.index("``") - 200:text.index("``") + 100])
        assert not [doc for doc in builtin_docs if doc in text], page  # e.g. BACKENDS as a bare tuple
    assert "The values of the backend argument of rips_persistence()" in api["torchtopo.rips"]
    # References to a public name resolve, whichever import path the docstring used.
    public = {name for module in [torchtopo, *torchtopo_api.public_modules()] for name in module.__all__}
    for page in (docs / "html").rglob("*.html"):
        text = page.read_text()
        for found in re.finditer(r'<code class="xref py[^"]*"><span class="pre">([\w.]+?)(?:\(\))?</span>', text):
            before = text[:found.start()]
            linked = before.rfind("<a ") > before.rfind("</a>")
            assert linked or found.group(1).rsplit(".", 1)[-1] not in public, (page.name, found.group(1))


@pytest.mark.slow
def test_pages_load_nothing_from_the_network(docs):
    pages = sorted((docs / "html").rglob("*.html"))
    assert len(pages) > 15
    for page in pages:
        text = page.read_text()
        for tag, attribute in (("script", "src"), ("link", "href")):
            for url in re.findall(rf"<{tag}\b[^>]*\b{attribute}=[\"']([^\"']+)", text):
                assert not re.match(r"(https?:)?//", url), (page.name, tag, url)
    # The maths renderer and the stylesheet are shipped with the pages.
    concepts = html(docs, "concepts")
    assert '<script defer="defer" src="_static/mathjax/tex-chtml.js">' in concepts
    assert r"\(\mathrm{VR}_r(X)\)" in concepts  # typeset in the browser, by that local copy
    assert (docs / "html" / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
    assert (docs / "html" / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert 'href="_static/torchtopo.css' in concepts
    css = (docs / "html" / "_static" / "torchtopo.css").read_text()
    assert "overflow-x: auto" in css and "white-space: nowrap" in css


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


def test_noisy_circles_figure_is_drawn_by_torchtopo_plot():
    import matplotlib

    matplotlib.use("Agg")
    spec = importlib.util.spec_from_file_location("noisy_circles", ROOT / "examples" / "noisy_circles.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    clouds, labels = script.sample(2, 60, 0.08, torch.Generator().manual_seed(0))
    diagrams = rips_persistence(clouds, max_dim=1, keep_infinite=True)
    fig = script.draw(clouds, diagrams, ["circle", "blob"])
    for b, ax in enumerate(fig.axes[2:]):
        # Square, the diagonal across the whole view, every point inside it, the infinite bar marked.
        assert ax.get_xlim() == ax.get_ylim()
        diagonal = next(line for line in ax.lines if line.get_gid() == "diagonal")
        assert (min(diagonal.get_xdata()), max(diagonal.get_xdata())) == pytest.approx(ax.get_xlim())
        finite = torch.cat([diagrams.to_list(d)[b] for d in (0, 1)])
        finite = finite[finite.isfinite().all(1)]
        assert float(finite.max()) < ax.get_xlim()[1]
        assert [c.get_gid() for c in ax.collections] == ["H0", "H0-infinite", "H1"]
        assert ax.get_yticklabels()[-1].get_text() == r"$+\infty$"
