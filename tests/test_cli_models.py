"""`nasnet zoo` and `nasnet show` and the error contract of the command line."""

import json

import pytest

from conftest import run_cli_batch
from nasnet import NASNET_A


@pytest.fixture(scope="module")
def zoo_outputs():
    """`nasnet zoo --json` and `nasnet zoo`, run in one process (the counts are computed once each)."""
    json_run, table_run = run_cli_batch([["zoo", "--json"], ["zoo"]])
    return json_run, table_run


def test_zoo_json(zoo_outputs):
    res = zoo_outputs[0]
    assert res["rc"] == 0, res["stderr"]
    rows = {r["name"]: r for r in json.loads(res["stdout"])}
    keys = {"name", "params", "params_with_bn_stats", "mult_adds", "image_size", "num_classes", "paper_params",
            "paper_mult_adds"}
    for r in rows.values():
        assert keys <= set(r)
    assert rows["nasnet_a_mobile"]["params"] == 5_289_978
    assert rows["nasnet_a_mobile"]["paper_mult_adds"] == 564_000_000
    assert rows["nasnet_a_large"]["params_with_bn_stats"] == 88_949_818
    assert rows["nasnet_a_cifar"]["num_classes"] == 10 and rows["nasnet_a_large"]["image_size"] == 331


def test_zoo_table(zoo_outputs):
    res = zoo_outputs[1]
    assert res["rc"] == 0, res["stderr"]
    assert "5,289,978" in res["stdout"] and "23,783.4M" in res["stdout"] and "paper params" in res["stdout"]


def test_show_nasnet_a_and_files(cli, tmp_path):
    res = cli("show", "nasnet-a")
    assert res.returncode == 0
    assert "normal cell" in res.stdout and "reduce cell" in res.stdout
    assert "concat: states 1, 2, 3, 4, 5, 6" in res.stdout
    assert str(NASNET_A) in res.stdout
    path = tmp_path / "g.txt"
    path.write_text(str(NASNET_A))
    assert cli("show", str(path)).stdout == res.stdout
    assert json.loads(cli("show", "nasnet-a", "--json").stdout) == NASNET_A.to_dict()


def test_bad_genotype_is_one_line_no_traceback(cli):
    bad = str(NASNET_A).replace("3 identity 2", "3 teleport 2")
    res = cli("show", bad)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "reduce cell, block 3, op 1: unknown op 'teleport'" in lines[0]


def test_missing_file_is_a_clear_error(cli, tmp_path):
    res = cli("show", str(tmp_path / "nope.txt"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not a known name" in res.stderr


def test_help_lists_commands(cli):
    res = cli("--help")
    assert res.returncode == 0 and "zoo" in res.stdout and "show" in res.stdout
