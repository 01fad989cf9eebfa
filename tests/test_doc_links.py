"""Every relative link and image of the Markdown pages resolves: the file exists, and a #fragment
names a heading of the page it points to (GitHub's anchors: lower case, punctuation dropped,
spaces to hyphens)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {anchor(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)}


def links(page: Path) -> list:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_anchor_follows_githubs_rule():
    assert anchor("Written once: `ganbench/step.py` and the backends' engines") == \
        "written-once-ganbenchsteppy-and-the-backends-engines"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_docs_page_opens_with_its_contents(page):
    """Each page of docs/ links to each of its sections before the first of them."""
    text = page.read_text()
    sections = re.findall(r"^## (.*)$", text, flags=re.M)
    before = text.split("\n## ", 1)[0]
    assert [s for s in sections if f"(#{anchor(s)})" not in before] == []
