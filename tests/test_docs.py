"""The repository documents itself: no pointers to files outside it, and every
"conventions.md §n" citation names an existing section of docs/conventions.md."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CONVENTIONS = ROOT / "docs" / "conventions.md"
# spelled in pieces so that this file does not match itself
OUTSIDE = [s.encode() for s in ("../" + "shared", "DESIGN" + " §", "DESIGN" + ".md")]
CITATION = re.compile(r"conventions\.md §(\d+)")


def repository_files():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the repository's files")
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True).stdout
    files = [ROOT / name for name in out.decode().split("\0") if name]
    return [f for f in files if f.is_file()]


def sections():
    """Section numbers of docs/conventions.md (headings "## n. Title")."""
    return [int(n) for n in re.findall(r"^## (\d+)\. \S", CONVENTIONS.read_text(), re.M)]


def test_no_references_outside_the_repository():
    files = repository_files()
    assert CONVENTIONS in files
    bad = [f"{f.relative_to(ROOT)}: {p.decode()}" for f in files for p in OUTSIDE if p in f.read_bytes()]
    assert not bad, "files point outside the repository (cite docs/conventions.md §n instead):\n" + "\n".join(bad)


def test_conventions_sections_are_numbered_in_order():
    numbers = sections()
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10


def test_every_citation_names_an_existing_section():
    known = set(sections())
    cited = {}
    for f in repository_files():
        for n in CITATION.findall(f.read_bytes().decode("utf-8", errors="replace")):
            cited.setdefault(int(n), []).append(str(f.relative_to(ROOT)))
    assert len(cited) >= 6  # the package cites its conventions from code, tests and notebooks
    missing = {n: where for n, where in cited.items() if n not in known}
    assert not missing, f"citations of sections that docs/conventions.md does not have: {missing}"
