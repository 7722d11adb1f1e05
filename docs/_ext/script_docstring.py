"""``.. script-docstring:: path``: show a script's module docstring, read without running it.

Benchmark and example scripts describe themselves in their docstring (what they measure, how to
run them); this puts that text in the docs verbatim, so the two never drift apart. The path is
relative to the document, like ``literalinclude``'s.
"""

from __future__ import annotations

import ast
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class ScriptDocstring(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        relative, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(relative)
        docstring = ast.get_docstring(ast.parse(Path(path).read_text()))
        if not docstring:
            raise self.error(f"{self.arguments[0]} has no module docstring")
        block = nodes.literal_block(docstring, docstring)
        block["language"] = "text"
        return [block]


def setup(app) -> dict:
    app.add_directive("script-docstring", ScriptDocstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
