"""Every number the README and docs/*.md quote from bench/results equals its file, and every relative link
in them (a file, and a heading anchor in a Markdown page) resolves inside the repository.

A quoted number is a Markdown link to the results file with a JSON pointer (RFC 6901) as fragment, relative
to the page: `[94.11](../bench/results/nb201/cifar10.json#/configs/evolution/budgets/150/mean)`; a CSV cell
is `file.csv#row=N&col=NAME` (N counts data rows from 0). The displayed text is a number (optional sign,
thousands commas, e-notation) with an optional `%` (the value is a fraction, shown x100) or `×`/`x` suffix;
it must equal the value rounded to the displayed decimals. A link title changes the scale: `"as is"` (a
`%` value already in percent) or `"×100"` (a fraction shown in points without `%`). docs/benchmarks.md,
"How numbers are quoted", is the convention's one description."""

import csv
import json
import math
import re
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, unquote

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(<?([^()\s>]+)>?(?:\s+\"([^\"]*)\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\)")
NUMBER = re.compile(r"^([+\-−]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.?\d+)(?:[eE]([+\-−]?\d+))?\s?(%|×|x)?$")
SCALE = re.compile(r"^[×x]\s?(\d+(?:\.\d+)?)$")


def _unfenced(text: str) -> str:
    """The page without its fenced code blocks."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)


def _prose(text: str) -> str:
    """The page without code (fenced blocks and inline), where link syntax is not a link."""
    return re.sub(r"`[^`\n]*`", "", _unfenced(text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def _anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _unfenced(page.read_text()).splitlines():
        if m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return frozenset(out)


@cache
def _json(path: Path):
    return json.loads(path.read_text())


@cache
def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _resolve(path: Path, fragment: str):
    """The value a fragment names in a results file (a JSON pointer, or row=N&col=NAME in a CSV file)."""
    if path.suffix == ".csv":
        query = parse_qs(fragment)
        if set(query) != {"row", "col"}:
            raise LookupError(f"a CSV cell is #row=N&col=NAME, not #{fragment}")
        rows = _csv(path)
        row, col = int(query["row"][0]), query["col"][0]
        if not 0 <= row < len(rows) or col not in rows[row]:
            raise LookupError(f"no row {row} / column {col!r} ({len(rows)} rows)")
        return float(rows[row][col])
    if not fragment.startswith("/"):
        raise LookupError(f"#{fragment} is not a JSON pointer (it starts with '/')")
    node = _json(path)
    for raw in fragment[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise LookupError(f"no index {token!r} in a list of {len(node)}")
            node = node[int(token)]
        elif isinstance(node, dict):
            if token not in node:
                raise LookupError(f"no key {token!r} (keys: {', '.join(list(node)[:8])})")
            node = node[token]
        else:
            raise LookupError(f"{token!r} reaches into a {type(node).__name__}")
    return node


def _check_number(shown: str, title: str | None, value) -> str | None:
    """None if the displayed number is `value` rounded to the displayed decimals, else what is wrong."""
    m = NUMBER.match(shown.strip())
    if not m:
        return f"the link text {shown!r} is not a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"the pointer names {type(value).__name__} {str(value)[:40]!r}, not a number"
    sign, digits, exponent, suffix = m.groups()
    scale = 100.0 if suffix == "%" else 1.0
    if title:
        if title.strip() == "as is":
            scale = 1.0
        elif s := SCALE.match(title.strip()):
            scale = float(s.group(1))
        else:
            return f'unknown link title {title!r} (use "as is" or "×100")'
    number = float(digits.replace(",", "")) * (-1 if sign in "-−" and sign else 1)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    if exponent:
        power = int(exponent.replace("−", "-"))
        number, half = number * 10.0 ** power, 0.5 * 10.0 ** (power - decimals)
    else:
        half = 0.5 * 10.0 ** -decimals
    actual = value * scale
    if math.isfinite(actual) and abs(actual - number) <= half * (1 + 1e-9) + 1e-12:
        return None
    return f"shows {shown}, the file has {value!r}" + (f" (x{scale:g}: {actual!r})" if scale != 1 else "")


def _links(page: Path):
    text = _prose(page.read_text())
    for m in LINK.finditer(text):
        yield m.group(1), m.group(2), m.group(3)
    for m in IMAGE.finditer(text):
        yield None, m.group(1), None


def _problems() -> tuple[list[str], int]:
    problems, quoted = [], 0
    for page in PAGES:
        where = page.relative_to(ROOT)
        for shown, target, title in _links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#") and not target[1:]:
                continue                                   # http(s):, mailto: and the like
            file_part, _, fragment = target.partition("#")
            path = (page.parent / unquote(file_part)).resolve() if file_part else page
            if not path.exists():
                problems.append(f"{where}: [{shown}]({target}): no such file")
                continue
            if ROOT.resolve() not in path.parents and path != ROOT.resolve():
                problems.append(f"{where}: [{shown}]({target}): outside the repository")
                continue
            if not fragment:
                continue
            if path.suffix == ".md":
                if unquote(fragment) not in _anchors(path):
                    problems.append(f"{where}: [{shown}]({target}): no heading #{fragment} in {path.name}")
                continue
            if "bench/results" not in path.as_posix() or shown is None:
                continue
            quoted += 1
            try:
                value = _resolve(path, unquote(fragment))
            except (LookupError, ValueError) as e:
                problems.append(f"{where}: [{shown}]({target}): {e}")
                continue
            if wrong := _check_number(shown, title, value):
                problems.append(f"{where}: [{shown}]({target}): {wrong}")
    return problems, quoted


def test_quoted_numbers_match_their_results_files_and_links_resolve():
    problems, quoted = _problems()
    assert not problems, "\n".join(problems)
    assert quoted >= 600, f"only {quoted} numbers are quoted from bench/results (were links removed?)"


def test_the_checks_catch_what_they_are_for(tmp_path):
    assert _check_number("94.11", None, 94.11016) is None
    assert _check_number("94.12", None, 94.11016) == "shows 94.12, the file has 94.11016"
    assert _check_number("97.3%", None, 0.97312) is None and _check_number("97.3%", "as is", 97.31) is None
    assert _check_number("4.4", "×100", 0.0442) is None and _check_number("4.4", None, 0.0442)
    assert _check_number("15,625", None, 15625) is None and _check_number("−0.09", None, -0.0912) is None
    assert _check_number("1.27×", None, 1.266) is None and _check_number("3.6e-7", None, 3.64e-7) is None
    assert "not a number" in _check_number("about 2", None, 2.0)
    assert "not a number" in _check_number("1.0", None, "1.0")
    (tmp_path / "r.json").write_text('{"a": [{"b/c": 1.5}]}')
    (tmp_path / "r.csv").write_text("name,v\nx,0.25\n")
    assert _resolve(tmp_path / "r.json", "/a/0/b~1c") == 1.5 and _resolve(tmp_path / "r.csv", "row=0&col=v") == 0.25
    for path, fragment in ((tmp_path / "r.json", "/a/1"), (tmp_path / "r.json", "/a/0/d"), (tmp_path / "r.json", "a"),
                           (tmp_path / "r.csv", "row=1&col=v"), (tmp_path / "r.csv", "col=v")):
        try:
            _resolve(path, fragment)
        except LookupError:
            continue
        raise AssertionError(f"{path.name}#{fragment} resolved")
    assert _slug("Recipes (`--preset`)") == "recipes---preset" and _slug("ScheduledDropPath (§4, A.5)") == "scheduleddroppath-4-a5"
