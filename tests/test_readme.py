"""The README's Python API tour runs as written (so the documented calls stay true)."""

import re

from conftest import ROOT


def _block_after(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(heading)
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_python_api_tour_runs(capsys):
    code = _block_after("### Python API")
    namespace: dict = {}
    exec(compile(code, "README.md#python-api", "exec"), namespace)
    assert tuple(namespace["features"].shape) == (1, 1056, 7, 7)
    assert namespace["aux_logits"].shape == (8, 1000)
    assert "nasnet_a_mobile" in capsys.readouterr().out
