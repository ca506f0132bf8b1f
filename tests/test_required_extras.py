"""Tests that cannot vanish quietly: where the full suite must run (CI sets
NASNET_CI=1, see .ci/run), a package of the test extra that is missing fails the suite instead of
skipping the tests that need it (importorskip would pass with exit 0); elsewhere such tests skip and
say why. Tests that need CUDA carry the `gpu` marker, so they skip visibly without it."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib

import pytest
import torch

from conftest import ROOT

TESTS = ROOT / "tests"


def _ci() -> bool:
    return os.environ.get("NASNET_CI", "") not in ("", "0")


def test_extra_packages():
    """Every distribution the test extra names (pyproject.toml) is installed: under NASNET_CI a missing
    one is a failure, elsewhere a visible skip listing them."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    names = [re.match(r"[A-Za-z0-9_.\-]+", spec).group(0) for spec in extra]
    assert {"ray", "hypothesis", "h5py", "safetensors"} <= set(names)
    missing = []
    for name in names:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing and _ci():
        pytest.fail(f"the test extra is not installed ({', '.join(missing)}); NASNET_CI is set, so every "
                    "test must run: pip install -e '.[test]'")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install -e '.[test]'); tests that need them skip")


def _pytest_without_ray(tmp_path, ci: bool, *targets: str) -> subprocess.CompletedProcess:
    """pytest on `targets` in a fresh process where `import ray` fails (a package named ray that raises
    ImportError comes first on the path), with or without NASNET_CI."""
    hide = tmp_path / "hide"
    (hide / "ray").mkdir(parents=True, exist_ok=True)
    (hide / "ray" / "__init__.py").write_text("raise ImportError('Ray hidden by the test')\n")
    env = {k: v for k, v in os.environ.items() if k != "NASNET_CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(hide), str(ROOT / "src")])
    if ci:
        env["NASNET_CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *targets],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def _cuda_tests() -> list[tuple[str, str, bool]]:
    """(file, test, carries the gpu marker) for every test function whose body puts something on CUDA."""
    on_cuda = re.compile(r"""torch\.device\(\s*["']cuda|device\s*=\s*["']cuda|\.cuda\(|\.to\(\s*["']cuda""")
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                if on_cuda.search(ast.get_source_segment(source, node) or ""):
                    marked = any("gpu" in ast.unparse(d) for d in node.decorator_list)
                    found.append((path.name, node.name, marked))
    return found


def test_every_cuda_test_carries_the_gpu_marker():
    # catches: a CUDA-only test without the marker (it would error, not skip, on a machine without CUDA)
    found = _cuda_tests()
    assert found, "the scan finds the GPU suite's CUDA tests"
    assert [(f, t) for f, t, marked in found if not marked] == []


def test_without_ray_or_cuda_their_tests_skip_and_say_why(tmp_path):
    # catches: a CUDA test that errors instead of skipping, a skip without its reason in the summary
    gpu = [] if torch.cuda.is_available() else [f"tests/{f}::{t}" for f, t, _ in _cuda_tests()]
    r = _pytest_without_ray(tmp_path, False, "tests/test_search_ray.py", *gpu)
    assert r.returncode == 0 and f"{len(gpu) + 1} skipped" in r.stdout, r.stdout + r.stderr
    assert "Ray is not installed" in r.stdout and r.stdout.count("needs CUDA") == len(gpu), r.stdout


def test_in_ci_the_ray_tests_fail_without_ray(tmp_path):
    # catches: an importorskip (or a lost NASNET_CI check) letting CI pass without running the Ray tests
    r = _pytest_without_ray(tmp_path, True, "tests/test_search_ray.py")
    assert r.returncode == 1 and "NASNET_CI is set, so these tests must run" in r.stdout, r.stdout + r.stderr
    assert " passed" not in r.stdout.splitlines()[-1], r.stdout[-2000:]


def test_property_tests_are_derandomised():
    # catches: the conftest profile not loaded (each run would draw new examples, and a slow draw on
    # a loaded machine would fail Hypothesis's default 200 ms deadline)
    from hypothesis import settings

    assert settings.default.derandomize is True and settings.default.deadline is None
    assert settings.default.database is None
