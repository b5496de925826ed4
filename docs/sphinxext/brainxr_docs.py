"""brainxr's own Sphinx glue: the API pages, one page per object, the gallery's arguments.

- ``config-inited`` writes ``docs/api/*.rst`` from :mod:`api_pages` before
  Sphinx lists the sources and autosummary generates its stub pages.
- ``missing-reference`` resolves another path of a documented object to its
  page: the top-level shortcuts (``brainxr.open_nifti``), defining modules
  (``brainxr.connectome.estimation.connectivity``) and other re-exports all
  name the same object, which is documented once.
- A reference to an existing brainxr name that has no page (an internal
  module or helper a docstring mentions) renders as code without a link; a
  reference to a name that does not exist stays an error.
- ``.. brainxr-command-help::`` renders ``brainxr.cli.build_parser()``: the
  ``--help`` of the command and of each subcommand, as a terminal shows it.
- :func:`example_arguments` gives each gallery example the command line the
  tests give it (``--quick --output DIR``), with its outputs under
  ``docs/_build``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import api_pages

DOCS = Path(__file__).resolve().parents[1]


def example_arguments(gallery_conf, script_vars):
    """sphinx-gallery's ``reset_argv``: run every example in quick mode, writing under ``docs/_build``."""
    output = DOCS / "_build" / "example_outputs" / Path(script_vars["src_file"]).stem
    return ["--quick", "--output", str(output)]


_DOCUMENTED = {}


def _write_api_pages(app, config):
    api_pages.write_pages(DOCS / "api")
    _DOCUMENTED.update(api_pages.documented_objects())


def _import(target: str):
    """The object a dotted name refers to, or None."""
    parts = target.split(".")
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


def _resolve_alias(app, env, node, contnode):
    """Link another name of a documented object (a shortcut, its defining module) to its page."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if not target.startswith("brainxr."):
        module = node.get("py:module")
        if not module or not module.startswith("brainxr"):
            return None
        target = f"{module}.{target}"
    documented = _DOCUMENTED
    head, _, member = target.rpartition(".")
    obj = _import(target)
    if obj is not None and id(obj) in documented:
        name = documented[id(obj)]
    else:
        # a method or attribute of a documented class, named through another path of the class
        owner = _import(head)
        if owner is None or id(owner) not in documented:
            return None
        name = f"{documented[id(owner)]}.{member}"
    if name == target:
        return None
    resolved = env.get_domain("py").resolve_any_xref(env, node["refdoc"], app.builder, name, node, contnode)
    return resolved[0][1] if resolved else None


def _candidates(node) -> list[str]:
    """The full names a Python reference may mean: relative to its context, and to the module defining it."""
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    contexts = [f"{module}.{cls}" if cls else None, module]
    page = node.get("refdoc", "").rpartition("/")[2]
    documented = _import(page) if page.startswith("brainxr.") else None  # the object of an API page
    if documented is not None:
        owner = getattr(documented, "__module__", None)
        contexts += [f"{owner}.{documented.__qualname__}" if inspect.isclass(documented) else None, owner]
    names = [f"{context}.{target}" for context in contexts if context] + [target]
    return [name for name in names if name.startswith("brainxr")]


def _exists(name: str) -> bool:
    if _import(name) is not None:
        return True
    owner_name, _, attribute = name.rpartition(".")
    owner = _import(owner_name)  # an instance attribute (a dataclass field, an annotated attribute)
    return inspect.isclass(owner) and attribute in getattr(owner, "__annotations__", {})


def _internal_as_code(app, env, node, contnode):
    """An existing brainxr name without a page of its own: code, no link (runs after the alias resolver)."""
    if node.get("refdomain") != "py":
        return None
    if any(_exists(name) for name in _candidates(node)):
        return contnode
    return None


class CommandHelp(SphinxDirective):
    """``--help`` of ``brainxr`` and of each of its subcommands, one section each, as literal blocks."""

    def run(self):
        from brainxr.cli import build_parser

        parser = build_parser()
        subcommands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        result = [self._section("brainxr", "brainxr", parser)]
        for name, subparser in subcommands.choices.items():
            result.append(self._section(f"brainxr-{name}", f"brainxr {name}", subparser))
        return result

    def _section(self, anchor: str, title: str, parser) -> nodes.section:
        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"  # argparse wraps at the terminal's width: the width of a page
        try:
            text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        section = nodes.section(ids=[anchor])
        section += nodes.title(text=title)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        section += block
        return section


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Leave out members a class gets from another library (scikit-learn's ``set_*_request``...)."""
    module = getattr(obj, "__module__", None) or getattr(getattr(obj, "fget", None), "__module__", None)
    if what == "class" and module is not None and not module.startswith("brainxr"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_member)
    app.connect("config-inited", _write_api_pages)
    app.connect("missing-reference", _resolve_alias)
    app.connect("missing-reference", _internal_as_code, priority=600)
    app.add_directive("brainxr-command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
