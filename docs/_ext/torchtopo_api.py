"""Generate the API reference from the public names, at every build.

``torchtopo.__all__`` is documented on ``api/index``; each public submodule (every
``torchtopo.<name>`` not starting with ``_``) gets ``api/torchtopo.<name>`` listing its
``__all__``. An object is documented once, where users import it from: the top-level namespace
if it is exported there, else the module that defines it, else the first module that lists it;
its other homes link to that entry. A new module or a new public name therefore appears in the
docs without editing them, and a module without ``__all__`` fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

PACKAGE = "torchtopo"


def public_modules() -> list[ModuleType]:
    """The public submodules of the package, sorted by name."""
    package = importlib.import_module(PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))
    modules = [importlib.import_module(f"{PACKAGE}.{name}") for name in names]
    for module in modules:
        if not hasattr(module, "__all__"):
            raise ExtensionError(f"{module.__name__} has no __all__: declare its public names")
    return modules


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def _role(obj: object) -> str:
    return {"autoclass": "class", "autofunction": "func", "autodata": "data"}[_directive(obj)]


def _entry(qualified: str, obj: object) -> list[str]:
    lines = [f".. {_directive(obj)}:: {qualified}"]
    if inspect.isclass(obj):
        lines.append("   :members:")
    return [*lines, ""]


def _homes(package: ModuleType, modules: list[ModuleType]) -> dict[int, str]:
    """``id(obj) -> qualified name`` of the one place each public object is documented."""
    homes = {id(getattr(package, name)): f"{PACKAGE}.{name}" for name in package.__all__}
    for defining_first in (True, False):
        for module in modules:
            for name in module.__all__:
                obj = getattr(module, name)
                defined_here = getattr(obj, "__module__", None) == module.__name__ or not hasattr(obj, "__module__")
                if id(obj) not in homes and (defined_here or not defining_first):
                    homes[id(obj)] = f"{module.__name__}.{name}"
    return homes


def _title(text: str, underline: str) -> list[str]:
    return [text, underline * len(text), ""]


def render(package: ModuleType, modules: list[ModuleType]) -> dict[str, str]:
    """``{page name: reStructuredText}`` of the API reference."""
    homes = _homes(package, modules)
    index = [
        *_title("API reference", "="),
        "Generated from the docstrings. The names below are importable from ``torchtopo``;",
        "the submodules hold the rest (``from torchtopo.vectorize import persistence_image``).",
        "Shapes follow the library's conventions: batch first, ``(B, N, D)`` point clouds, and an",
        "unbatched input gives an unbatched output.",
        "",
        *_title("torchtopo", "-"),
        f".. automodule:: {PACKAGE}",
        "",
    ]
    for name in package.__all__:
        index += _entry(f"{PACKAGE}.{name}", getattr(package, name))
    index += [*_title("Submodules", "-"), ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {module.__name__}" for module in modules] + [""]
    pages = {"index": index}
    for module in modules:
        page = [*_title(f"``{module.__name__}``", "="), f".. automodule:: {module.__name__}", ""]
        elsewhere = []
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{module.__name__}.{name}"
            if homes[id(obj)] == qualified:
                page += _entry(qualified, obj)
            else:
                elsewhere.append(f":{_role(obj)}:`{name} <{homes[id(obj)]}>`")
        if elsewhere:
            page += [f"Also importable from here: {', '.join(elsewhere)}.", ""]
        pages[module.__name__] = page
    return {name: "\n".join(lines) for name, lines in pages.items()}


def doctest_setup(package: ModuleType, modules: list[ModuleType]) -> str:
    """Imports giving every doctest the public names, as a module's docstring sees its globals."""
    return "\n".join(["import torch", f"from {PACKAGE} import *"] + [f"from {m.__name__} import *" for m in modules])


def write_pages(app: Sphinx) -> None:
    package = importlib.import_module(PACKAGE)
    out = Path(app.srcdir) / "api"
    out.mkdir(exist_ok=True)
    pages = render(package, public_modules())
    for stale in set(out.glob("*.rst")) - {out / f"{name}.rst" for name in pages}:
        stale.unlink()
    for name, text in pages.items():
        path = out / f"{name}.rst"
        # Rewrite only on change, so that an unchanged API does not invalidate the build cache.
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


# The docstrings' kornia / torch.nn style blocks, written ``Convention:`` or ``Shape:`` over an
# indented body. numpy style only knows underlined headers, so a ``Shape:`` after the parameters
# would be read as one more parameter: turn them into headers of napoleon custom sections.
BLOCKS = ("Convention", "Shape")


def underline_blocks(app: Sphinx, what: str, name: str, obj: object, options: dict, lines: list[str]) -> None:
    for i in reversed(range(len(lines))):
        title = lines[i].rstrip()[:-1]
        if lines[i].rstrip().endswith(":") and title in BLOCKS:
            lines[i:i + 1] = [title, "-" * len(title)]


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", write_pages)
    # Before napoleon (priority 500), which parses the sections.
    app.connect("autodoc-process-docstring", underline_blocks, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
