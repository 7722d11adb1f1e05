"""``.. script-docstring:: path``: show scripts' module docstrings, read without running them.

Benchmark and example scripts describe themselves in their docstring (what they measure, how to
run them); this puts that text in the docs verbatim, so the two never drift apart. The path is
relative to the document, like ``literalinclude``'s, and may be a glob (``bench_*.py``): each
match, in name order, gets a rubric with its name, so a new script appears without editing the
page.
"""

from __future__ import annotations

import ast
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class ScriptDocstring(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        pattern = self.arguments[0]
        relative, path = self.env.relfn2path(pattern, self.env.docname)
        paths = sorted(Path(path).parent.glob(Path(path).name))
        if not paths:
            raise self.error(f"no script matches {pattern}")
        out: list[nodes.Node] = []
        for script in paths:
            self.env.note_dependency(str(script))
            docstring = ast.get_docstring(ast.parse(script.read_text()))
            if not docstring:
                raise self.error(f"{script.name} has no module docstring")
            if len(paths) > 1 or "*" in pattern:
                out.append(nodes.rubric(text=script.name))
            block = nodes.literal_block(docstring, docstring)
            block["language"] = "text"
            out.append(block)
        return out


def setup(app) -> dict:
    app.add_directive("script-docstring", ScriptDocstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
