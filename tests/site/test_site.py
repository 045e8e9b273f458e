"""The built book, opened page by page in a real headless Chromium (Debian's), from a loopback server.

Run after `make book` with `make test-site` (pytest --site tests/site). Screenshots of the
introduction and of the first page of each chapter go to _build/site-test/.
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "site-test"

SOURCES = sorted(p for p in BOOK.rglob("*.md"))


def page_url(server, source: pathlib.Path) -> str:
    return f"{server}/{source.relative_to(BOOK.parent).with_suffix('.html')}"


def count_directives(source: pathlib.Path, kind: str) -> int:
    # Directives open with three or more backticks (more when they contain a fenced block) or colons.
    return len(re.findall(r"^(?:`{3,}|:{3,})\{" + kind + r"[}\s]", source.read_text(), flags=re.M))


@pytest.mark.parametrize("source", SOURCES, ids=[str(p.relative_to(BOOK)) for p in SOURCES])
def test_page_renders(browser_page, server, source):
    page, console_errors = browser_page
    response = page.goto(page_url(server, source), wait_until="load")
    assert response.ok, f"HTTP {response.status}"
    assert not console_errors, f"console errors from the book's own assets: {console_errors}"

    # Every figure is present and was decoded (non-zero natural size), and has alt text.
    broken = page.eval_on_selector_all("main img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0))"
                                       ".map(i => i.src)")
    assert not broken, f"images that did not load: {broken}"
    # Every image says what it shows (MyST-NB's `mystnb: image: alt:`); the theme's logo is not content.
    # Without alt text docutils writes the image's file name as its alt, which describes nothing.
    undescribed = page.eval_on_selector_all(
        "main img", "imgs => imgs.filter(i => !i.closest('.navbar-brand') && !i.classList.contains('logo__image'))"
                    ".filter(i => { const alt = (i.getAttribute('alt') || '').trim();"
                    " return !alt || /^\\S+\\.(png|jpe?g|gif|svg|webp)$/i.test(alt); })"
                    ".map(i => i.id || i.getAttribute('src').slice(0, 80))")
    assert not undescribed, f"images without alt text (add `mystnb: image: alt:` to the cell): {undescribed}"
    figures_in_source = len(re.findall(r"^\s+figure:\s*$", source.read_text(), flags=re.M))
    assert page.locator("main figure img, main .cell_output img").count() >= figures_in_source

    # Theorems, definitions, propositions and exercises render as admonitions.
    for kind, selector in (("prf:theorem", ".proof.theorem"), ("prf:definition", ".proof.definition"),
                           ("prf:proposition", ".proof.proposition"), ("exercise", ".exercise")):
        expected = count_directives(source, kind) + (count_directives(source, "exercise-start")
                                                     if kind == "exercise" else 0)
        assert page.locator(f"main {selector}").count() == expected, kind

    # The math source is in the page (typeset from a CDN when online; the test does not need it).
    if "$" in source.read_text():
        assert page.locator("main .math").count() > 0


@pytest.mark.parametrize("source", [s for s in SOURCES if "{solution" in s.read_text()],
                         ids=lambda s: str(s.relative_to(BOOK)))
def test_solutions_open_when_clicked(browser_page, server, source):
    page, _ = browser_page
    page.goto(page_url(server, source), wait_until="load")
    solution = page.locator("main .solution.dropdown").first
    body = solution.locator(":scope > :not(.admonition-title)").first
    assert not body.is_visible(), "a solution should be hidden until its toggle is clicked"
    solution.locator("button.toggle-button").click()
    body.wait_for(state="visible", timeout=5000)


def internal_links():
    links = []
    for html in sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts):
        text = html.read_text(errors="replace")
        for href in re.findall(r'href="([^"]+)"', text):
            if href.startswith(("http:", "https:", "mailto:", "javascript:", "data:")) or href == "#":
                continue
            links.append((html, href))
    return links


def test_internal_links_and_cross_references_resolve():
    missing = []
    ids_cache: dict[pathlib.Path, set] = {}
    for html, href in internal_links():
        path, _, anchor = urllib.parse.unquote(href).partition("#")
        path = path.partition("?")[0]
        target = (html.parent / path).resolve() if path else html
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            missing.append(f"{html.relative_to(HTML)} -> {href}")
            continue
        if anchor and target.suffix == ".html":
            ids = ids_cache.setdefault(target, set(re.findall(r'id="([^"]+)"', target.read_text(errors="replace"))))
            if anchor not in ids:
                missing.append(f"{html.relative_to(HTML)} -> {href} (no such anchor)")
    assert not missing, "\n".join(missing[:20])


def test_search_finds_a_term_from_a_chapter(browser_page, server):
    page, console_errors = browser_page
    page.goto(f"{server}/search.html?q=equiangular", wait_until="load")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(state="attached", timeout=15000)
    assert results.count() >= 1
    assert not console_errors


def test_screenshots_of_the_introduction_and_each_chapter(browser_page, server):
    page, _ = browser_page
    SHOTS.mkdir(parents=True, exist_ok=True)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    # The first content page of every chapter (its first section, if the chapter has sections).
    chapters = [chapter for part in toc["parts"] for chapter in part["chapters"]]
    firsts = [BOOK / "intro.md"] + [ROOT / f"{(c.get('sections') or [c])[0]['file']}.md" for c in chapters]
    for source in firsts:
        page.goto(page_url(server, source), wait_until="load")
        shot = SHOTS / f"{source.parent.name if source.parent != BOOK else 'intro'}-{source.stem}.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000, f"{shot} looks empty"


def test_launch_buttons_open_the_reference_notebooks():
    """Binder and Colab open tests/notebooks/<page>.ipynb, which exists for every notebook page."""
    checked = 0
    for source in SOURCES:
        reference = ROOT / "tests" / "notebooks" / source.relative_to(BOOK).with_suffix(".ipynb")
        if not reference.exists():
            continue
        html = (HTML / source.relative_to(BOOK.parent).with_suffix(".html")).read_text()
        links = re.findall(r'href="(https://(?:mybinder\.org|colab\.research\.google\.com)[^"]+)"', html)
        target = str(reference.relative_to(ROOT))
        assert len(links) == 2 and all(link.endswith(target) for link in links), (source, links)
        checked += 1
    assert checked >= 40
