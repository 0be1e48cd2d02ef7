"""The documents: every relative link in README.md, docs/ and training/EXPERIMENTS.md leads to a file
that exists (and to a heading of it, when it names one), and the README keeps a user's sections."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "training" / "EXPERIMENTS.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith("#") and not line.startswith("#!")}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue                                   # https:, mailto: ...: not ours to check
        file, _, fragment = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_relative_link_leads_somewhere():
    assert (ROOT / "docs" / "RESULTS.md").is_file() and (ROOT / "docs" / "OPERATIONS.md").is_file()
    for path in DOCUMENTS:
        assert broken_links(path) == [], path.name


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "there.md").write_text("# A heading, here\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](there.md) [ok](there.md#a-heading-here) [web](https://example.org/x)\n"
                   "[gone](missing.md) [bad](there.md#nowhere)\n", encoding="utf-8")
    assert broken_links(doc) == ["missing.md: no such file", "there.md#nowhere: no such heading"]


def test_the_readme_is_a_users_guide_that_links_the_figures():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("## ")]
    for section in ("Two commands", "Using it", "Python API", "Where things are", "Data"):
        assert section in headings, section
    assert "docs/RESULTS.md" in text and "docs/OPERATIONS.md" in text
    assert len(text.splitlines()) < 400          # the figures and operations live in docs/
