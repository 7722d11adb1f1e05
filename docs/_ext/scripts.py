"""Directives that show what scripts say about themselves and what they recorded.

``.. script-docstring:: path`` shows scripts' module docstrings, read without running them:
benchmark and example scripts describe themselves there (what they measure, how to run them),
so the docs quote that text and the two never drift apart. A docstring is rendered as
reStructuredText (paragraphs, lists, ``literals``), its indented blocks (the command lines) as
code.

``.. markdown-files:: path`` includes Markdown files (the tables that benchmark scripts write),
rendered by myst-parser, each under a rubric with its name, in a container of class
``wide-table`` (``_static/torchtopo.css`` lets wide tables scroll instead of squeezing). No match
is not an error here: the page then says that nothing is recorded.

Paths are relative to the document, like ``literalinclude``'s, and may be globs
(``bench_*.py``): the matches are shown in name order, so a new script or a new results file
appears without editing the page.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class _Glob(SphinxDirective):
    required_arguments = 1

    def matches(self, required: bool = True) -> list[Path]:
        pattern = self.arguments[0]
        _, path = self.env.relfn2path(pattern, self.env.docname)
        paths = sorted(Path(path).parent.glob(Path(path).name))
        if not paths and required:
            raise self.error(f"no file matches {pattern}")
        for found in paths:
            self.env.note_dependency(str(found))
        return paths


def as_restructuredtext(docstring: str) -> list[str]:
    """The docstring's lines, with ``::`` before each block indented by 4 or more that follows
    a paragraph or list item (indented less), so that command lines show as code rather than as
    a block quote."""
    lines = docstring.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        opens_block = line.startswith("    ") and i > 0 and not lines[i - 1].strip()
        if opens_block:
            previous = next((p for p in reversed(out) if p.strip()), "")
            if not previous.startswith("    ") and not previous.rstrip().endswith("::"):
                out += ["::", ""]
        out.append(line)
    return out


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
            section = nodes.container(classes=["script-docstring"])
            self.state.nested_parse(StringList(as_restructuredtext(docstring), str(script)), self.content_offset,
                                    section)
            out.append(section)
        return out


class MarkdownFiles(_Glob):
    def run(self) -> list[nodes.Node]:
        here = Path(self.env.doc2path(self.env.docname)).parent
        paths = self.matches(required=False)
        if not paths:
            return [nodes.paragraph(text=f"Nothing is recorded at this commit (no file matches {self.arguments[0]}).")]
        lines = []
        for path in paths:
            # Relative to the document: Sphinx reads an absolute include path from the source root.
            relative = os.path.relpath(path, here)
            lines += [f".. rubric:: {path.name}", "", ".. container:: wide-table", "",
                      f"   .. include:: {relative}", "      :parser: myst_parser.sphinx_", ""]
        self.state_machine.insert_input(lines, self.state_machine.input_lines.source(0))
        return []


def setup(app) -> dict:
    app.add_directive("script-docstring", ScriptDocstring)
    app.add_directive("markdown-files", MarkdownFiles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
