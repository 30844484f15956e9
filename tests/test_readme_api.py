"""The README's Python API block runs as written (on a planted zoo model) and means what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_api_block_runs(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- python-api:begin -->\n```python\n(.*?)```\n<!-- python-api:end -->", text, re.S)
    assert block is not None, "the README lost its Python API block"
    code = block.group(1).replace("/tmp/circuitspec-api-example", str(tmp_path / "out"))
    monkeypatch.chdir(README.parent)
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)  # the project's own README
    assert namespace["code"] == 0  # every claim of the planted circuit passes
    assert {o.verdict for o in namespace["result"].outcomes} == {"pass"}
    assert "mover_positive pass" in printed.getvalue()
    assert (tmp_path / "out" / "report.json").is_file()
