"""The API reference: one page per public module, each written by one directive.

``docs/api/<module>.rst`` (``torchtopo.rips.rst``) holds a title and ``.. module-api:: <module>``,
and ``docs/api/index.rst`` lists it in its toctree; ``.. module-api:: torchtopo`` on the index
gives the table of the top-level names. The directive writes the module's docstring, a summary
table of its ``__all__`` (each name linked to its entry, with the first sentence of its
docstring) and the entries of the objects documented on that page.

An object is documented once, under the name users import it by: ``torchtopo.<name>`` if the
package exports it, else ``<module>.<name>``; on the page of the public module that defines it
(by ``__module__``, so ``torchtopo.rips.core.rips_persistence`` lands on ``torchtopo.rips``), or,
for objects that name no module (constants), on the first page that lists it. Its other homes
link to that entry from their summary tables. A constant is documented by its ``#:`` comment
where it is assigned (Python gives a tuple no docstring of its own); a public name without
documentation, a module without ``__all__`` or a public module without a page fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

PACKAGE = "torchtopo"
logger = logging.getLogger(__name__)


def public_modules() -> list[ModuleType]:
    """The public submodules of the package, sorted by name."""
    package = importlib.import_module(PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if not info.name.startswith("_"))
    modules = [importlib.import_module(f"{PACKAGE}.{name}") for name in names]
    for module in modules:
        if not hasattr(module, "__all__"):
            raise ExtensionError(f"{module.__name__} has no __all__: declare its public names")
    return modules


def _page_of(obj: object, listing: ModuleType, modules: list[ModuleType]) -> ModuleType:
    """The public module whose name prefixes ``obj.__module__``, else the module listing it."""
    defined = getattr(obj, "__module__", None) or ""
    for module in modules:
        if (defined == module.__name__ or defined.startswith(module.__name__ + ".")) and any(
                member is obj for member in _members(module)):
            return module
    return listing


def _members(module: ModuleType) -> list[object]:
    return [getattr(module, name) for name in module.__all__]


def _homes(package: ModuleType, modules: list[ModuleType]) -> dict[int, tuple[str, str]]:
    """``id(obj) -> (qualified name, page module)``: where each public object is documented."""
    homes: dict[int, tuple[str, str]] = {}
    for name in package.__all__:
        obj = getattr(package, name)
        listing = next((m for m in modules if name in m.__all__ and getattr(m, name) is obj), package)
        homes[id(obj)] = (f"{PACKAGE}.{name}", _page_of(obj, listing, modules).__name__)
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) not in homes:
                page = _page_of(obj, module, modules)
                page = page if getattr(page, name, None) is obj else module
                homes[id(obj)] = (f"{page.__name__}.{name}", page.__name__)
    return homes


def _is_data(obj: object) -> bool:
    return not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismodule(obj))


def _comment(obj: object, name: str) -> list[str]:
    """The ``#:`` comment of a constant, from the first module of the package that assigns it."""
    candidates = sorted(key for key, module in list(sys.modules.items())
                        if (key == PACKAGE or key.startswith(PACKAGE + ".")) and getattr(module, name, None) is obj)
    for module_name in candidates:
        try:
            lines = ModuleAnalyzer.for_module(module_name).find_attr_docs().get(("", name))
        except Exception:  # noqa: BLE001 - a module without source (compiled) has no comments to read
            continue
        while lines and not lines[-1].strip():
            lines = lines[:-1]
        if lines:
            return lines
    return []


def _docstring(obj: object, qualified: str) -> list[str]:
    lines = _comment(obj, qualified.rsplit(".", 1)[1]) if _is_data(obj) else (inspect.getdoc(obj) or "").splitlines()
    if not any(line.strip() for line in lines):
        how = "a #: comment above its assignment" if _is_data(obj) else "a docstring"
        raise ExtensionError(f"{qualified} is public but undocumented: give it {how}")
    return lines


def first_sentence(lines: list[str]) -> str:
    """The first sentence of the first paragraph, reST markup kept (a period inside ``literal``
    or `role` text does not end it)."""
    paragraph = []
    for line in lines:
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph)
    inside, i = None, 0
    while i < len(text):
        if text.startswith("``", i):
            inside = None if inside == "``" else inside or "``"
            i += 2
            continue
        if text[i] == "`" and inside != "``":
            inside = None if inside == "`" else "`"
        elif text[i] == "." and inside is None and (i + 1 == len(text) or text[i + 1] == " "):
            return text[: i + 1]
        i += 1
    return text


def _entry(qualified: str, obj: object, lines: list[str]) -> list[str]:
    if inspect.isclass(obj):
        return [f".. autoclass:: {qualified}", "   :members:", ""]
    if not _is_data(obj):
        return [f".. autofunction:: {qualified}", ""]
    # A constant: its value and its #: comment (autodata would show the docstring of its type).
    module, name = qualified.rsplit(".", 1)
    return [f".. py:data:: {name}", f"   :module: {module}", f"   :value: {obj!r}", "",
            *[f"   {line}" for line in lines], ""]


def render(module: ModuleType, package: ModuleType, modules: list[ModuleType]) -> list[str]:
    """reStructuredText of one module's page body (everything below its title)."""
    homes = _homes(package, modules)
    objects = {id(getattr(module, name)): getattr(module, name) for name in module.__all__}
    # Objects this page documents although the module does not list them (exported by the package only).
    objects.update({key: obj for key, obj in ((id(o), o) for o in _members(package))
                    if homes[key][1] == module.__name__})
    rows, entries = [], []
    for key, obj in objects.items():
        qualified, page = homes[key]
        lines = _docstring(obj, qualified)
        rows += [f"   * - :py:obj:`~{qualified}`", f"     - {first_sentence(lines)}"]
        if page == module.__name__:
            entries += _entry(qualified, obj, lines)
    table = [".. list-table::", "   :class: api-summary", "   :widths: 30 70", "", *rows, ""]
    return [f".. automodule:: {module.__name__}", "", *table, *entries]


class ModuleAPI(SphinxDirective):
    """``.. module-api:: torchtopo.rips``: the module's docstring, summary table and entries."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = importlib.import_module(PACKAGE)
        modules = public_modules()
        name = self.arguments[0]
        module = package if name == PACKAGE else next((m for m in modules if m.__name__ == name), None)
        if module is None:
            raise self.error(f"{name} is not a public module of {PACKAGE}")
        self.state_machine.insert_input(render(module, package, modules), self.state_machine.input_lines.source(0))
        return []


def _lookup(path: str) -> object | None:
    """The object at a dotted path (``torchtopo.rips.rips_persistence``), or None."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def resolve_public_name(app: Sphinx, env, node: nodes.Element, contnode: nodes.Element):
    """Send a reference to any import path of a public object to its one entry: in
    ``torchtopo.rips``'s docstrings ``:func:`rips_persistence``` means ``torchtopo.rips_persistence``,
    in ``TopologyLoss``'s (documented as ``torchtopo.TopologyLoss``) ``:func:`topology_loss``` means
    ``torchtopo.losses.topology_loss``. A bare name is looked up in the current module, the package
    and then every public module, and resolved when it names one public object."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    package = importlib.import_module(PACKAGE)
    modules = public_modules()
    homes = _homes(package, modules)
    prefixes = [node.get("py:module"), PACKAGE, *(m.__name__ for m in modules)]
    paths = [target] if target.startswith(PACKAGE + ".") else [f"{prefix}.{target}" for prefix in prefixes if prefix]
    found = {id(obj) for obj in map(_lookup, paths) if obj is not None and id(obj) in homes}
    if len(found) != 1:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], homes[found.pop()][0],
                                             node, contnode)


def check_pages(app: Sphinx) -> None:
    """Every public module has its page, and every page is a public module's."""
    api = Path(app.srcdir) / "api"
    wanted = {m.__name__ for m in public_modules()}
    present = {path.stem for path in api.glob("*.rst")} - {"index"}
    for name in sorted(wanted - present):
        logger.warning(f"public module {name} has no page: add docs/api/{name}.rst (a title and "
                       f"'.. module-api:: {name}') and list it in docs/api/index.rst")
    for name in sorted(present - wanted):
        logger.warning(f"docs/api/{name}.rst documents no public module of {PACKAGE}")


def doctest_setup(package: ModuleType, modules: list[ModuleType]) -> str:
    """Imports giving every doctest the public names, as a module's docstring sees its globals."""
    return "\n".join(["import torch", f"from {PACKAGE} import *"] + [f"from {m.__name__} import *" for m in modules])


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
    app.add_directive("module-api", ModuleAPI)
    app.connect("builder-inited", check_pages)
    app.connect("missing-reference", resolve_public_name)
    # Before napoleon (priority 500), which parses the sections.
    app.connect("autodoc-process-docstring", underline_blocks, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
