"""The registry mechanism (name -> object, its names, the one "(known: ...)" message, argparse choices,
lazy entries) and settings declared once on config fields (the flags, their help and defaults, the bounds
and the field -> flag table all come from the declaration)."""

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from nasnet.errors import NasnetError
from nasnet.options import Option, replace_fields, setting, settings
from nasnet.registry import Registry, names_of

SRC = Path(__file__).resolve().parents[1] / "src" / "nasnet"


def test_a_registry_looks_up_lists_and_names_what_it_knows():
    r = Registry("colour", ["red", "green"])
    r.register("blue", "#00f", help="the sky")
    assert list(r) == ["red", "green", "blue"] and str(r) == "red, green, blue" and r["blue"] == "#00f"
    assert r.lookup("red") == "red" and r.help("blue") == "the sky"
    with pytest.raises(NasnetError, match=r"^unknown colour 'pink' \(known: red, green, blue\)$"):
        r.lookup("pink")
    with pytest.raises(NasnetError, match="colour 'red' is already registered"):
        r.register("red", "#f00")
    assert r.described(" or ") == "red, green or blue (the sky)"


def test_names_are_normalised_where_a_registry_says_so():
    from nasnet.arch.space import SPACES, get_space

    assert "NASNet_B" in SPACES and get_space("NASNet_B") is SPACES["nasnet-b"]
    with pytest.raises(NasnetError, match=r"unknown search space 'nasnet-z' \(known: nasnet-a, nasnet-b, nasnet-c"):
        get_space("nasnet-z")


def test_lazy_entries_are_imported_only_when_looked_up():
    r = Registry("thing", {"json": "json:dumps", "missing": "no_such_module_anywhere:thing"}, lazy=True)
    assert "missing" in r and list(r) == ["json", "missing"]       # listing and checking import nothing
    import json

    assert r.lookup("json") is json.dumps
    with pytest.raises(ModuleNotFoundError):
        r.lookup("missing")


def test_a_registry_is_argparse_choices():
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--colour", choices=Registry("colour", ["red", "green"]))
    assert parser.parse_args(["--colour", "green"]).colour == "green"
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        parser.parse_args(["--colour", "pink"])
    assert list(names_of("nasnet.search.choices:STRATEGIES")) == ["ppo", "reinforce", "random", "evolution", "local"]


def test_every_known_list_in_a_message_is_written_by_the_registry():
    files = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if "(known:" in p.read_text())
    assert files == ["registry.py"], files


def test_registering_a_strategy_is_all_it_takes(monkeypatch):
    """The config validates against the registry the strategies are made from, and the help lists it."""
    from nasnet.cli import build_parser
    from nasnet.search.choices import STRATEGIES
    from nasnet.search.config import SearchConfig, StrategyConfig
    from nasnet.search.strategies import RandomSearch, make_strategy

    with pytest.raises(NasnetError, match=r"unknown strategy 'uniform' \(known: ppo, reinforce, random, evolution, local\)"):
        SearchConfig(strategy=StrategyConfig(name="uniform"))
    monkeypatch.setitem(STRATEGIES, "uniform", RandomSearch)
    config = SearchConfig(strategy=StrategyConfig(name="uniform"))
    assert isinstance(make_strategy([3, 4], config.strategy), RandomSearch)
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["search"]
    assert "uniform" in sub.format_help()


def test_registering_an_executor_is_all_it_takes(monkeypatch):
    from nasnet.search.config import ExecutorConfig, SearchConfig
    from nasnet.search.executors import EXECUTORS, SerialExecutor, make_executor

    class Mine(SerialExecutor):
        name = "mine"

    monkeypatch.setitem(EXECUTORS, "mine", Mine)
    config = SearchConfig(executor=ExecutorConfig(name="mine", workers=3))
    executor = make_executor(config.executor)
    assert isinstance(executor, Mine) and executor.capacity == 3


def _search_help() -> str:
    from nasnet.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["search"]
    return " ".join(sub.format_help().split())


def test_the_search_flags_are_the_declared_fields():
    """Every declared field has its flag, its help and its default in `nasnet search --help`, and the messages'
    field -> flag table is the same declaration."""
    from nasnet.cli._search_args import SETTINGS
    from nasnet.cli._search_flags import FLAGS, flag_for
    from nasnet.search.config import SearchConfig

    declared = list(settings(SearchConfig))
    assert {s.path for s in SETTINGS} == {s.path for s in declared}
    text = _search_help()
    bare = "".join(text.split())
    for s in declared:
        names = s.option.names
        described = names.described(" or ") if names is not None else ""
        expected = s.help_text().replace("{names}", str(names)).replace("{described}", described)
        assert s.option.flag in text and "".join(expected.split()) in bare, (s.path, expected)
    assert FLAGS == {s.path: s.option.flag for s in declared}
    assert flag_for("strategy.population") == "--population" and flag_for("child.train.epochs") == "--epochs"
    assert "learning rate (default: ppo 0.005, reinforce 0.01; 0.00035 with --paper" in " ".join(text.split())
    assert "entropy penalty weight (default: ppo 0.003, reinforce 0.01; 1e-5 with --paper" in " ".join(text.split())
    assert "(default: as many as the CPUs allow)" in text and "weight w <= 0 (default -0.07, MnasNet's)" in text
    assert "serial (this process), process (local worker processes) or ray" in text


def test_the_bounds_are_the_declared_ones():
    from nasnet.search.config import COUNTS, SearchConfig

    bounds = {s.path: s.bounds()[:2] for s in COUNTS}
    assert bounds["seed"] == (-2**31, 2**31 - 1) and bounds["strategy.population"] == (2, 2**31 - 1)
    assert bounds["executor.workers"][0] == 0 and "child.train.epochs" not in bounds
    with pytest.raises(NasnetError, match=re.escape("`top_k` must be a whole number of at least 0 (0: no top-k "
                                                    "stage), got -1")):
        SearchConfig(top_k=-1)


def test_a_declaration_makes_a_flag():
    from nasnet.cli._parse import add_setting

    @dataclasses.dataclass(frozen=True)
    class Config:
        GROUP = "g"
        depth: int = setting(3, "--depth", "layers", low=1)
        fast: bool = setting(True, "--no-fast", "go slowly", default_text="fast")
        extra: dict = setting(default_factory=dict, keys={"width": Option("--width", "columns", kind="int")})

    declared = list(settings(Config))
    assert [(s.path, s.dest, s.kind) for s in declared] == [("depth", "depth", "int"), ("fast", "fast", "bool"),
                                                           ("extra.width", "width", "int")]
    parser = argparse.ArgumentParser()
    for s in declared:
        add_setting(parser, s)
    args = parser.parse_args(["--depth", "5", "--no-fast"])
    assert (args.depth, args.fast, args.width) == (5, False, None)
    assert "layers (default 3)" in parser.format_help() and "go slowly (default: fast)" in parser.format_help()


def test_replace_is_one_function_for_every_config():
    from nasnet.search.config import SearchConfig
    from nasnet.train.config import TrainConfig

    assert SearchConfig().replace(**{"strategy.batch_size": 5, "children": 7}).strategy.batch_size == 5
    with pytest.raises(NasnetError, match=r"train config: unknown field\(s\) colour \(known: .*batch_size"):
        TrainConfig().replace(colour=1)
    with pytest.raises(NasnetError, match=r"search config: unknown field\(s\) strategy.colour"):
        SearchConfig().replace(**{"strategy.colour": 1})
    with pytest.raises(NasnetError, match=r"unknown field\(s\) seed.x"):
        replace_fields(SearchConfig(), "search config", {"seed.x": 1})
