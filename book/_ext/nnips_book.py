"""Sphinx glue for the book's HTML pages.

- Launch buttons open the executed reference notebook ``tests/notebooks/<page>.ipynb`` of a page
  in Colab and Binder: Colab opens only ``.ipynb`` files, and JupyterLab would open the MyST source
  as plain text.
- Each inline script appears once: sphinx-thebe and sphinx-book-theme both add the same thebe
  configuration script, and the second copy fails with "Identifier 'THEBE_JS_URL' has already been
  declared" in the browser console.
"""

from __future__ import annotations

import re

REFERENCE = "tests/notebooks/"


def _launch_target(url: str) -> str:
    """``.../book/<path>.md`` (or .ipynb) -> ``.../tests/notebooks/<path>.ipynb`` inside a launch URL."""
    return re.sub(r"(?<=/)book/([^?#]+)\.(md|ipynb)", lambda m: f"{REFERENCE}{m.group(1)}.ipynb", url)


def point_launch_buttons_at_reference_notebooks(app, pagename, templatename, context, doctree):
    if not pagename.startswith("book/") or not context.get("header_buttons"):
        return
    for group in context["header_buttons"]:
        if group.get("label") == "launch-buttons":
            for button in group["buttons"]:
                if "url" in button:
                    button["url"] = _launch_target(button["url"])


def deduplicate_inline_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # What the page renders: the file and the attributes (an inline script's text is its "body").
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    # After sphinx-book-theme builds its launch buttons (priority 501).
    app.connect("html-page-context", point_launch_buttons_at_reference_notebooks, priority=600)
    app.connect("html-page-context", deduplicate_inline_scripts, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
