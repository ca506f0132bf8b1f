"""The README's test command on a fresh machine: the browser test skips, saying why,
where there is no Chromium, and fails instead where CI says Chromium must be there."""

import os
import subprocess
import sys

from conftest import ROOT


def _browser_test(tmp_path, **env):
    empty = tmp_path / "bin"                 # a PATH on which no chromium can be found
    empty.mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in ("NASNET_CHROMIUM", "NASNET_CI")}
    full.update(PATH=str(empty), PYTHONPATH=str(ROOT / "src"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_report_browser.py")], capture_output=True, text=True,
                          cwd=ROOT, env=full, timeout=300)


def test_without_chromium_the_browser_test_skips_with_its_reason(tmp_path):
    r = _browser_test(tmp_path)
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout + r.stderr
    assert "SKIPPED" in r.stdout and "Chromium not found: install Debian's chromium package" in r.stdout


def test_ci_requires_chromium(tmp_path):
    r = _browser_test(tmp_path, NASNET_CI="1")
    assert r.returncode == 1 and "1 failed" in r.stdout, r.stdout + r.stderr
    assert "NASNET_CI is set" in r.stdout
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export NASNET_CI=1" in ci and "apt-get install" in ci and "chromium" in ci
    readme = (ROOT / "README.md").read_text()
    assert "apt-get install chromium" in readme and "NASNET_CI=1" in readme
