"""Guards of the reproducibility harness: sources, reference notebooks, table of contents, pins."""

import pathlib
import re

import jupytext
import nbformat
import pytest
import yaml

from refresh_notebooks import BOOK, COLAB_INSTALL, COLAB_TAG, ROOT, pages, reference_for

PAGES = pages()


def code_cells(nb):
    return [cell.source.strip() for cell in nb.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(BOOK)) for p in PAGES])
def test_reference_notebook_matches_its_source(page):
    reference = reference_for(page)
    assert reference.exists(), f"{reference.relative_to(ROOT)} is missing: run `make refresh`"
    notebook = nbformat.read(reference, as_version=4)
    first = notebook.cells[0]
    assert COLAB_TAG in first.metadata.get("tags", []) and first.source == COLAB_INSTALL, (
        f"{reference.relative_to(ROOT)} lacks the Colab install cell: run `make refresh`")
    assert code_cells(jupytext.read(page)) == code_cells(notebook)[1:], (
        f"{page.relative_to(ROOT)} changed since its reference notebook was executed: run `make refresh`")


def test_no_orphan_reference_notebooks():
    expected = {reference_for(p) for p in PAGES}
    orphans = [p for p in (ROOT / "tests" / "notebooks").rglob("*.ipynb") if p not in expected]
    assert not orphans, f"reference notebooks without a source page: {orphans}"


def toc_files():
    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    yield node[key]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return set(walk(yaml.safe_load((ROOT / "_toc.yml").read_text())))


def test_every_page_is_in_the_table_of_contents():
    sources = {str(p.relative_to(ROOT).with_suffix("")) for p in BOOK.rglob("*.md")}
    assert sources == toc_files()


CHAPTER_PAGES = [p for p in PAGES if p.parent.name != "appendix"]


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[str(p.relative_to(BOOK)) for p in CHAPTER_PAGES])
def test_page_has_learning_goals_exercises_and_references(page):
    text = page.read_text()
    assert "## Overview" in text and re.search(r"learning goals|you will", text, re.I), "learning goals"
    assert "## Exercises" in text and "{exercise" in text, "exercises"
    assert "{solution" in text, "solutions"
    assert "## References" in text and "{footbibliography}" in text, "references"


CONTENT_PAGES = sorted(p for p in BOOK.glob("*/*.md") if p.parent.name != "appendix" and p.name != "index.md")


def run_it_yourself_cells(page):
    """The code cells of the page's `## Run it yourself` section (None if the page has no such section)."""
    section, cells = None, []
    for cell in jupytext.read(page).cells:
        if cell.cell_type == "markdown":
            headings = [line for line in cell.source.splitlines() if line.startswith("## ")]
            if section and headings:
                break
            if "## Run it yourself" in headings:
                section = True
        elif section:
            cells.append(cell)
    return cells if section else None


@pytest.mark.parametrize("page", CONTENT_PAGES, ids=[str(p.relative_to(BOOK)) for p in CONTENT_PAGES])
def test_page_has_a_run_it_yourself_section_before_the_exercises(page):
    cells = run_it_yourself_cells(page)
    assert cells is not None, "no `## Run it yourself` section (parameters to vary, then one cheap code cell)"
    assert cells, "the `## Run it yourself` section has no code cell"
    text = page.read_text()
    assert text.index("## Run it yourself") < text.index("## Exercises"), "the section goes before the exercises"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(BOOK)) for p in PAGES])
def test_every_figure_has_a_caption_a_name_and_alt_text(page):
    for cell in jupytext.read(page).cells:
        if cell.cell_type == "code" and "plt.show()" in cell.source:
            options = cell.metadata.get("mystnb", {})
            figure, image = options.get("figure", {}), options.get("image", {})
            first = cell.source.splitlines()[0]
            assert figure.get("caption") and figure.get("name"), f"figure without caption and name: {first}"
            assert str(image.get("alt", "")).strip(), f"figure {figure['name']} without `mystnb: image: alt:`"


def test_pages_declare_the_python3_kernel():
    for page in PAGES:
        assert jupytext.read(page).metadata["kernelspec"]["name"] == "python3", page


def test_environment_yml_delegates_to_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert sorted(c.split("=")[0] for c in conda) == ["pip", "python"]
    assert pip == ["--extra-index-url https://download.pytorch.org/whl/cpu", "-r requirements.txt", "-e ./code"]


def test_requirements_are_exact_pins():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [l for l in lines if l and not l.startswith("#")]
    assert reqs and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", r) for r in reqs), reqs
    names = [r.split("==")[0].lower().replace("_", "-") for r in reqs]
    assert len(names) == len(set(names)), "a package is pinned twice"
    assert "torch==2.13.0" in reqs, "torch must stay at the release whose CPU wheel CI and Binder use"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in ci
