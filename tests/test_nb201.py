"""NAS-Bench-201 built in: its space and cell strings, the shipped tables against the published numbers, the
lookup child, the search on it from the command line, and the benchmark script's agreement with it."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, one_error_line, run_cli_batch
from nasnet.arch import NB201Cell, NB201Space, get_space, load_architecture
from nasnet.errors import NasnetError
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.children import nb201
from nasnet.search.objective import objective

sys.path.insert(0, str(ROOT / "bench"))

SPACE = get_space("nb201")
# NAS-Bench-201's best CIFAR-10 cell by validation accuracy, as the benchmark's papers print it
BEST_CIFAR10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def test_the_space_round_trips_every_cell_string():
    assert SPACE.size() == 15625 and SPACE.decision_sizes() == [5] * 6 and SPACE.decision_roles() == ["op"] * 6
    texts = set()
    for decisions in itertools.product(range(5), repeat=6):
        cell = SPACE.decode(list(decisions))
        text = str(cell)
        assert NB201Cell.parse(text) == cell and SPACE.encode(cell) == list(decisions)
        texts.add(text)
    assert len(texts) == 15625
    cell = SPACE.parse(BEST_CIFAR10)
    assert cell.edges()[:3] == [(0, 1, "nor_conv_3x3"), (0, 2, "nor_conv_3x3"), (1, 2, "nor_conv_3x3")]
    assert cell.edges()[3:] == [(0, 3, "skip_connect"), (1, 3, "nor_conv_3x3"), (2, 3, "nor_conv_1x1")]
    assert SPACE.load(cell.to_json()) == cell and load_architecture(BEST_CIFAR10) == cell
    assert cell.connected() and not SPACE.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
                                                ).connected()


@pytest.mark.parametrize("text, needle", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 node groups"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|none~1|none~2|", "node 2 takes 2 input(s)"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "expected 'op~0'"),
    ("normal[0 identity 0 identity add ; concat 2]", "neither a cell string"),
    # JSON as strict as a genotype's: a key twice, NaN, nesting too deep
    ('{"genotype": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "genotype": "x"}', "appears twice"),
    ('{"edges": NaN}', "NaN is not a JSON number"),
    ('{"edges": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
])
def test_bad_cell_strings_are_one_line_errors(text, needle):
    with pytest.raises(NasnetError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        SPACE.load(text)


def test_the_tables_hold_the_published_numbers():
    """Values from the public copies the tables were built from, read by hand (tools/make_nb201_tables.py)."""
    c10 = nb201.load_table("cifar10")
    # GENIUS's first entry, seed means: val_acc_200 87.72799999267578, test_acc_200 90.34
    row = c10.lookup(SPACE.encode(SPACE.parse(
        "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_1x1~2|")))
    assert row["val_mean"] == pytest.approx(87.728, abs=1e-3) and row["test_mean"] == pytest.approx(90.34, abs=1e-3)
    # NASLib's first entry: arch (4, 0, 3, 1, 4, 3) in its edge order (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) and op
    # order skip, none, conv3x3, conv1x1, avg: 0->1 avg, 0->2 skip, 0->3 conv1x1, 1->2 none, 1->3 avg, 2->3 conv1x1
    row = c10.lookup(SPACE.encode(SPACE.parse(
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|")))
    assert row["val_single"] == pytest.approx(84.99, abs=1e-3)
    # the optima the benchmark publishes; the best CIFAR-10 cell by validation accuracy has test accuracy 94.37
    for dataset, (val, test) in {"cifar10": (91.61, 94.37), "cifar100": (73.49, 73.51),
                                 "imagenet16-120": (46.73, 47.31)}.items():
        t = nb201.load_table(dataset)
        assert round(float(t.val_mean.max()), 2) == val and round(t.best_test, 2) == test
    best = int(np.argmax(c10.val_mean))
    assert str(SPACE.decode(nb201.cell_decisions(best))) == BEST_CIFAR10
    assert round(float(c10.test_mean[best]), 2) == 94.37
    # a cell whose output is cut off from its input learns nothing: chance level
    dead = SPACE.encode(SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"))
    assert c10.lookup(dead)["val_mean"] < 11


def test_a_damaged_or_missing_table_is_one_line(tmp_path):
    shutil.copytree(nb201.TABLE_DIR, tmp_path / "t")
    path = tmp_path / "t" / nb201.table_file("cifar100")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(NasnetError, match="damaged"):
        nb201.load_table("cifar100", str(tmp_path / "t"))
    path.unlink()
    with pytest.raises(NasnetError, match="missing"):
        nb201.load_table("cifar100", str(tmp_path / "t"))
    (tmp_path / "t" / nb201.MANIFEST).write_text("{")
    with pytest.raises(NasnetError, match="manifest"):
        nb201.load_table("cifar10", str(tmp_path / "t"))


def test_the_child_rewards_validation_and_records_test_accuracy():
    out = nb201.nb201_child({"genotype": BEST_CIFAR10, "data": "cifar10"})
    assert out["reward"] == out["val_accuracy"] == pytest.approx(0.9118, abs=1e-4)       # one seed
    assert out["test_accuracy"] == pytest.approx(0.9437, abs=1e-4)
    mean = nb201.nb201_child({"genotype": BEST_CIFAR10, "data": "cifar10", "reward": "mean"})
    assert mean["reward"] == pytest.approx(0.9161, abs=1e-4) and mean["test_accuracy"] == out["test_accuracy"]
    with pytest.raises(NasnetError, match="unknown dataset"):
        nb201.nb201_child({"genotype": BEST_CIFAR10, "data": "mnist"})
    # the objective reads the reward (and a cost), never the test accuracy
    assert objective({**out, "test_accuracy": 0.0}, SearchConfig().cost) == objective(out, SearchConfig().cost)


def nb201_config(strategy: str, children: int = 60, seed: int = 0, **options) -> SearchConfig:
    return SearchConfig(space="nb201", children=children, seed=seed, strategy=StrategyConfig(name=strategy, **options),
                        child=ChildConfig(fn="nasnet.search.children.nb201:nb201_child", data="cifar10"),
                        executor=ExecutorConfig(name="serial"))


def test_no_selection_reads_the_test_accuracy(tmp_path, monkeypatch):
    """Scramble the test column: every proposal, reward and pick stays the same, in the search and the bench."""
    import nb201 as bench

    plain = nb201.load_table("cifar10")
    scrambled = nb201.Table("cifar10", plain.val_single, plain.val_mean,
                            np.random.default_rng(0).permutation(plain.test_mean))
    runs = {}
    for name, table in (("plain", plain), ("scrambled", scrambled)):
        monkeypatch.setattr(nb201, "load_table", lambda dataset, table_dir=None, table=table: table)
        summary = run_search(nb201_config("evolution", population=10, sample_size=3), tmp_path / name)
        trials = json.loads((tmp_path / name / "best.json").read_text())
        runs[name] = (summary.best_genotype, summary.best_reward, trials["metrics"]["test_accuracy"])
        trace = bench.run_trace(StrategyConfig(name="ppo", learning_rate=0.02, batch_size=5), 0, 60, table, "single")
        runs[name] += (list(trace["rows"]), bench.picks(trace, 60)[1])
    assert runs["plain"][:2] == runs["scrambled"][:2] and runs["plain"][3:] == runs["scrambled"][3:]
    assert runs["plain"][2] != runs["scrambled"][2]          # what was recorded did change


@pytest.mark.parametrize("strategy, options", [("random", {}), ("local", {}),
                                               ("evolution", {"population": 10, "sample_size": 3}),
                                               ("ppo", {"learning_rate": 0.02, "batch_size": 5}),
                                               ("reinforce", {"learning_rate": 0.02, "batch_size": 5})])
def test_the_search_picks_what_the_benchmark_picks(tmp_path, strategy, options):
    """bench/nb201.py drives the strategies without the store and executor: same seed, same pick."""
    import nb201 as bench

    config = nb201_config(strategy, children=80, seed=7, **options)
    summary = run_search(config, tmp_path)
    trace = bench.run_trace(config.strategy, 7, 80, nb201.load_table("cifar10"), "single")
    best = int(np.argmax(trace["reward"]))
    assert summary.best_genotype == str(SPACE.decode(nb201.cell_decisions(int(trace["rows"][best]))))
    assert summary.best_reward == pytest.approx(trace["reward"][best])
    assert summary.test_accuracy * 100 == pytest.approx(bench.picks(trace, 80)[0], abs=1e-4)


@pytest.mark.parametrize("strategy", ["random", "ppo", "reinforce", "evolution", "local"])
def test_a_strategy_proposes_the_same_whatever_its_budget(strategy):
    """The bench reads the picks at 50, 100, 150 queries off a 300-query run: no strategy looks at the budget."""
    import nb201 as bench

    table = nb201.load_table("cifar10")
    config = StrategyConfig(name=strategy, learning_rate=0.02, batch_size=5, population=10, sample_size=3)
    short, long = (bench.run_trace(config, 3, n, table, "single")["rows"] for n in (25, 50))
    assert list(short) == list(long[:25])


def test_the_command_line_search_and_show(tmp_path):
    run = tmp_path / "run"
    commands = [
        ["search", "--space", "nb201", "--child", "nb201:cifar10", "--children", "150", "--strategy", "local",
         "--seed", "3", "--run-dir", str(run), "--quiet"],
        ["show", str(run / "best.json"), "--out", str(tmp_path / "cell.svg")],
        ["search", "--space", "nb201", "--child", "train", "--run-dir", str(tmp_path / "e1")],
        ["search", "--child", "nb201:mnist", "--run-dir", str(tmp_path / "e2")],
        ["search", "--child", "nb201:cifar10", "--space", "nasnet-a", "--run-dir", str(tmp_path / "e3")],
        ["search", "--space", "nb201", "--epochs", "3", "--run-dir", str(tmp_path / "e4")],
        ["search", "--space", "nb201", "--child-set", "reward=median", "--run-dir", str(tmp_path / "e5")],
    ]
    results = run_cli_batch(commands)
    assert results[0]["rc"] == 0, results[0]["stderr"]
    best = json.loads((run / "best.json").read_text())
    assert NB201Cell.parse(best["genotype"]) and best["reward"] == best["metrics"]["val_accuracy"]
    assert 0.93 < best["metrics"]["test_accuracy"] < 0.9438
    assert f"its test accuracy: {best['metrics']['test_accuracy']:.4f}" in results[0]["stdout"]
    assert "nasnet train" not in results[0]["stdout"]            # a NAS-Bench-201 cell is not trained here
    config = json.loads((run / "config.json").read_text())
    assert config["executor"]["name"] == "serial" and config["child"]["data"] == "cifar10"
    assert results[1]["rc"] == 0 and "0 -> 1" in results[1]["stdout"] and (tmp_path / "cell.svg").is_file()
    for res, needle in zip(results[2:], ["training and analytic children cannot build", "unknown NAS-Bench-201 dataset 'mnist'",
                                         "not of nasnet-a", "trains nothing", "unknown reward"]):
        one_error_line(res["rc"], res["stderr"], needle)
    for i in range(1, 6):
        assert not (tmp_path / f"e{i}").exists()


def test_the_defaults_of_nasnet_search_are_the_measured_ones_and_the_papers_one_flag_away():
    """`nasnet search` starts from the strategy and settings chosen on NAS-Bench-201 (bench/nb201.py runs the same
    ones); --paper starts from the paper's; `nasnet compare`'s variants start from the paper's."""
    import nb201 as bench

    from nasnet.cli import build_parser
    from nasnet.cli._search_args import resolve_config
    from nasnet.search.defaults import SEARCH_STRATEGY, TUNED_SETTINGS

    assert bench.RECOMMENDED == SEARCH_STRATEGY and bench.strategy_config("ppo-paper") == StrategyConfig()
    for name, settings in TUNED_SETTINGS.items():
        assert bench.strategy_config(name) == StrategyConfig(name=name, **settings)

    def strategy(*argv):
        return resolve_config(build_parser().parse_args(list(argv)), None).strategy

    assert strategy("search") == StrategyConfig(name=SEARCH_STRATEGY, **TUNED_SETTINGS.get(SEARCH_STRATEGY, {}))
    assert strategy("search", "--strategy", "ppo") == StrategyConfig(name="ppo", **TUNED_SETTINGS["ppo"])
    assert strategy("search", "--strategy", "ppo", "--lr", "0.1").learning_rate == 0.1
    assert strategy("search", "--paper") == StrategyConfig()                      # PPO, lr 0.00035, batches of 20
    assert strategy("search", "--paper", "--strategy", "reinforce") == StrategyConfig(name="reinforce")
    assert strategy("compare") == StrategyConfig()
