"""report.html in headless Chromium: plots decode, the table renders and sorts, no errors,
and at 1400 px nothing scrolls sideways.

Uses Debian's `chromium` package (NASNET_CHROMIUM may name another binary), driven by the
`playwright` Python package without its own browser download. Without a browser the test is
skipped and says why (pytest's summary prints the reason), so the README's test command passes on a
fresh machine; `.ci/run` installs Chromium and sets NASNET_CI=1, which turns a missing browser into
a failure: CI always runs this test. Screenshots land in test-artifacts/.
"""

import os
import shutil

import pytest

from conftest import ROOT, trial_rows
from nasnet.report import make_report
from report_runs import compare_runs, faulty_run

ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--mute-audio"]


REQUIRED = "NASNET_CI"


def missing(reason: str):
    """Skip with the reason, unless the environment says the browser must be there (CI)."""
    if os.environ.get(REQUIRED, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRED} is set: this machine must run the browser test)")
    pytest.skip(reason)


def chromium_path() -> str:
    for candidate in (os.environ.get("NASNET_CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    missing("Chromium not found: install Debian's chromium package (apt-get install chromium; .ci/run does), "
            "or set NASNET_CHROMIUM to a Chromium binary")


def statuses(run_dir) -> list[str]:
    return [r["status"] for r in trial_rows(run_dir)]


COLUMN = """(name) => {
  const heads = Array.from(document.querySelectorAll('#trials thead th')).map(h => h.textContent);
  const i = heads.indexOf(name);
  return Array.from(document.querySelectorAll('#trials tbody tr')).map(r => r.cells[i].textContent);
}"""


def test_report_renders_in_headless_chromium(tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is missing: pip install -e '.[test]'")
    executable = chromium_path()
    faulty = faulty_run(tmp_path / "faulty")
    # labels as long as `nasnet compare` writes them: the summary table must still fit at 1400 px
    compare = compare_runs(tmp_path / "cmp", labels=("ppo-batchsize10-lr0.005-asha-seed0",
                                                     "random-asha-seed0"))
    reports = {   # name: (report, trial statuses in table order, images: 4 plots + the cells drawn)
        "faulty": (make_report([faulty], tmp_path / "faulty-report", cells=2, page_size=25), statuses(faulty),
                   4 + 2),
        "overlay": (make_report(compare, tmp_path / "overlay-report", cells=1),
                    statuses(compare[0]) + statuses(compare[1]), 4 + 2 * 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS, headless=True)
        try:
            for name, (result, expected, n_images) in reports.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors, requests, failed = [], [], []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("request", lambda r, requests=requests: requests.append(r.url))
                page.on("requestfailed", lambda r, failed=failed: failed.append(r.url))
                page.goto(result.path.resolve().as_uri(), wait_until="load")

                images = page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])")
                assert len(images) == n_images, images
                for alt, complete, width, height in images:
                    assert complete and width > 0 and height > 0, alt
                assert page.locator("#trials tbody tr").count() == len(expected)
                assert page.eval_on_selector_all(
                    "#trials tbody tr", "rs => rs.map(r => r.className)") == expected

                def column(header, page=page):
                    return page.evaluate(COLUMN, header)

                def visible(page=page):
                    return page.eval_on_selector_all("#trials tbody tr",
                                                     "rs => rs.filter(r => !r.hidden).map(r => r.cells[0].textContent)")

                if name == "faulty":       # 40 trials, 25 per page
                    assert visible() == [str(i) for i in range(1, 26)]
                    assert page.text_content("#shown") == "trials 1-25 of 40 shown"
                    page.click("#next")
                    assert visible() == [str(i) for i in range(26, 41)] and page.is_disabled("#next")
                    page.click("#prev")
                    assert visible() == [str(i) for i in range(1, 26)] and page.is_disabled("#prev")
                else:
                    assert len(visible()) == len(expected) and page.is_hidden("#next")

                # sorting: reward ascending, then descending; trials without a reward stay last
                page.click("#trials th:text-is('reward')")
                rewards = column("reward")
                filled = [float(x) for x in rewards if x]
                assert filled == sorted(filled) and rewards[len(filled):] == [""] * (len(rewards) - len(filled))
                assert len(filled) == expected.count("done")
                page.click("#trials th:text-is('reward')")
                rewards = column("reward")
                assert [float(x) for x in rewards if x] == sorted(filled, reverse=True)
                assert rewards[len(filled):] == [""] * (len(rewards) - len(filled))
                page.click("#trials th:text-is('trial')")
                page.click("#trials th:text-is('trial')")
                ids = [int(x) for x in column("trial")]
                assert ids == sorted(ids, reverse=True)
                assert page.get_attribute("#trials th:text-is('trial')", "aria-sort") == "descending"
                page.reload()              # as --watch's refresh does: the sort survives
                assert [int(x) for x in column("trial")] == ids
                assert page.get_attribute("#trials th:text-is('trial')", "aria-sort") == "descending"
                # the filter box
                page.fill("#filter", "diverged")
                shown = len(visible())
                assert shown == expected.count("diverged")
                assert page.text_content("#shown") == f"{shown} of {len(expected)} trials shown"
                page.fill("#filter", "")
                page.evaluate("window.scrollTo(0, 0)")

                page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"))   # the first screen; 1400 px: whole page
                # at 1400 px wide no table makes the page or its box scroll sideways
                page.set_viewport_size({"width": 1400, "height": 900})
                wide = page.evaluate("""() => Array.from(document.querySelectorAll('body, .scroll-x'))
                    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className || e.tagName)""")
                assert wide == [] and page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                page.screenshot(path=str(ARTIFACTS / f"report-{name}-1400.png"), full_page=True)
                assert errors == [] and failed == [], (errors, failed)
                assert all(u.startswith(("file:", "data:")) for u in requests), requests
                page.close()
        finally:
            browser.close()
    assert (ARTIFACTS / "report-faulty.png").stat().st_size > 10_000
