"""Execute the book's MyST notebooks into their reference notebooks under tests/notebooks/.

    python tests/refresh_notebooks.py                   # every page with code
    python tests/refresh_notebooks.py book/modeling/energy.md   # some pages

Each ``book/<path>.md`` with code cells becomes ``tests/notebooks/<path>.ipynb``, executed in the
page's own folder with nbclient (no timing metadata, so that the files only change when outputs
do). The reference notebooks are also what the book's Colab and Binder buttons open, so each starts
with one extra cell that installs the package when it runs in Colab (a no-op anywhere else). nbval re-executes these and compares outputs; see tests/test_consistency.py for the guard
that keeps them in step with the sources. Run through `make refresh` (one thread, like the tests).
"""

from __future__ import annotations

import pathlib
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REFERENCE = ROOT / "tests" / "notebooks"
REPOSITORY = "https://github.com/nnips/nnips-book"
COLAB_TAG = "colab-install"
COLAB_INSTALL = f"""\
# In Colab, install the book's package and its extras first (this cell does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "nnips[book] @ git+{REPOSITORY}#subdirectory=code"], check=True)"""


def has_code(path: pathlib.Path) -> bool:
    return any(cell.cell_type == "code" for cell in jupytext.read(path).cells)


def pages() -> list[pathlib.Path]:
    """All notebook pages of the book: MyST files with at least one code cell."""
    return sorted(p for p in BOOK.rglob("*.md") if has_code(p))


def reference_for(page: pathlib.Path) -> pathlib.Path:
    return REFERENCE / page.relative_to(BOOK).with_suffix(".ipynb")


def refresh(page: pathlib.Path) -> float:
    nb = jupytext.read(page)
    nb.cells.insert(0, nbformat.v4.new_code_cell(COLAB_INSTALL, metadata={"tags": [COLAB_TAG]}))
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(page.parent)}}).execute()
    seconds = time.perf_counter() - start
    target = reference_for(page)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return seconds


def main(argv: list[str]) -> None:
    targets = [pathlib.Path(a).resolve() for a in argv] or pages()
    for page in targets:
        seconds = refresh(page)
        print(f"{seconds:6.1f} s  {page.relative_to(ROOT)} -> {reference_for(page).relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
