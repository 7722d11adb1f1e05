"""Directives that show what scripts say about themselves and what they recorded.

``.. script-docstring:: path`` shows scripts' module docstrings, read without running them:
benchmark and example scripts describe themselves there (what they measure, how to run them),
so the docs quote that text verbatim and the two never drift apart.

``.. markdown-files:: path`` includes Markdown files (the tables that benchmark scripts write),
rendered by myst-parser, each under a rubric with its name.

Paths are relative to the document, like ``literalinclude``'s, and may be globs
(``bench_*.py``): the matches are shown in name order, so a new script or a new results file
appears without editing the page.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class _Glob(SphinxDirective):
    required_arguments = 1

    def matches(self) -> list[Path]:
        pattern = self.arguments[0]
        _, path = self.env.relfn2path(pattern, self.env.docname)
        paths = sorted(Path(path).parent.glob(Path(path).name))
        if not paths:
            raise self.error(f"no file matches {pattern}")
        for found in paths:
            self.env.note_dependency(str(found))
        return paths


class ScriptDocstring(_Glob):
    def run(self) -> list[nodes.Node]:
        paths = self.matches()
        out: list[nodes.Node] = []
        for script in paths:
            docstring = ast.get_docstring(ast.parse(script.read_text()))
            if not docstring:
                raise self.error(f"{script.name} has no module docstring")
            if len(paths) > 1 or "*" in self.arguments[0]:
                out.append(nodes.rubric(text=script.name))
            block = nodes.literal_block(docstring, docstring)
            block["language"] = "text"
            out.append(block)
        return out


class MarkdownFiles(_Glob):
    def run(self) -> list[nodes.Node]:
        here = Path(self.env.doc2path(self.env.docname)).parent
        lines = []
        for path in self.matches():
            # Relative to the document: Sphinx reads an absolute include path from the source root.
            relative = os.path.relpath(path, here)
            lines += [f".. rubric:: {path.name}", "", f".. include:: {relative}", "   :parser: myst_parser.sphinx_", ""]
        self.state_machine.insert_input(lines, self.state_machine.input_lines.source(0))
        return []


def setup(app) -> dict:
    app.add_directive("script-docstring", ScriptDocstring)
    app.add_directive("markdown-files", MarkdownFiles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
