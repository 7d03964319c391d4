"""Every ```python block of README.md runs as written, in order, in one namespace, and the
numbers its comments quote are what the code gives (to the digits shown)."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).parent.parent / "README.md"
NUMBER = re.compile(r"[-−]?\d+(?:\.(\d+))?(?:e([-−]?\d+))?")

#: statements whose trailing comment quotes numbers, and which value those numbers are
QUOTED = {
    "js.hall_conductivity(valley": lambda value, ns: value,
    "js.chern_number(haldane": lambda value, ns: value,
    "traj.populations[-1]": lambda value, ns: value,
    "J = js.transport.current": lambda value, ns: ns["J"],
    "sigma = js.transport.conductivity": lambda value, ns: ns["sigma"][0, 1],
}


def quoted_numbers(comment):
    """Numbers in a comment with the tolerance their printed digits imply (half a last digit)."""
    out = []
    for m in NUMBER.finditer(comment):
        value = float(m.group(0).replace("−", "-"))
        exponent = int(m.group(2).replace("−", "-")) if m.group(2) else 0
        tol = 0.5 * 10.0 ** (exponent - len(m.group(1))) if m.group(1) else None  # None: an integer
        out.append((value, tol))
    return out


def check_comment(source, comment, value):
    expected = quoted_numbers(comment)
    got = np.ravel(np.asarray(value, dtype=float))
    assert len(expected) == got.size, f"{source!r}: comment {comment!r} quotes {len(expected)} numbers"
    scale = np.max(np.abs(got))
    for (want, tol), x in zip(expected, got):
        tol = 1e-6 * scale if tol is None else tol  # a quoted integer 0 must be ~0 to round-off
        assert abs(x - want) <= tol, f"{source!r}: comment says {want}, the code gives {x}"


@pytest.mark.timeout(600)
def test_readme_python_blocks_run_and_comments_are_honest():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    ns, checked = {}, set()
    for block in blocks:
        lines = block.splitlines()
        for node in ast.parse(block).body:
            source = ast.get_source_segment(block, node)
            value = None
            if isinstance(node, ast.Expr):
                value = eval(compile(ast.Expression(node.value), "README.md", "eval"), ns)
            else:
                exec(compile(ast.Module([node], []), "README.md", "exec"), ns)
            for prefix, pick in QUOTED.items():
                if source.startswith(prefix):
                    comment = lines[node.end_lineno - 1].split("  # ", 1)[1]
                    check_comment(source, comment, pick(value, ns))
                    checked.add(prefix)
    assert checked == set(QUOTED), f"README statements not found: {set(QUOTED) - checked}"
    assert "result" in ns and np.isfinite(float(ns["result"].params["delta"]))
