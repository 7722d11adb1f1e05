"""Sphinx configuration: furo, autodoc + napoleon (numpy docstrings), doctest, figures drawn at build time."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # the checkout's torchtopo, installed or not

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import torchtopo  # noqa: E402
import torchtopo_api  # noqa: E402

project = "torchtopo"
author = "torchtopo developers"
copyright = "2026, torchtopo developers"
version = release = torchtopo.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax shipped with the pages: maths renders offline, no CDN
    "matplotlib.sphinxext.plot_directive",
    "myst_parser",  # renders the Markdown of benchmarks/README.md where the docs include it
    "torchtopo_api",
    "scripts",
]
# No intersphinx: builds must work offline.

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}  # benchmarks.md: the Markdown narrative
exclude_patterns = ["_build"]
templates_path = []

html_theme = "furo"
html_title = f"torchtopo {release}"
# Local stylesheet (wide tables scroll), shipped with the pages like everything they load.
html_static_path = ["_static"]
html_css_files = ["torchtopo.css"]

# autodoc + napoleon: numpy-style docstrings carry the types and shapes, so signatures stay short.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # no torch.nn.Module boilerplate for undocumented overrides
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = list(torchtopo_api.BLOCKS)

# Doctests see the public names, as a docstring sees its module's globals under pytest.
doctest_global_setup = torchtopo_api.doctest_setup(torchtopo, torchtopo_api.public_modules())

# Figures (``.. plot::``) are drawn by matplotlib while the docs build; nothing binary is committed.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_working_directory = str(DOCS.parent)  # code runs from the repository root, as the README's commands
plot_rcparams = {"figure.max_open_warning": 0}
plot_pre_code = "import matplotlib.pyplot as plt\nimport torch\n"
