"""The search's typed seams: NasnetError is not a ValueError (user errors are never swallowed as one),
the child payload and result are checked where they cross the executor boundary, and outcome kinds
and statuses are enums that still compare equal to their stored text."""

import json

import pytest

from nasnet.errors import NasnetError
from nasnet.search.run_dir import load_run_config


def test_a_user_error_is_not_a_value_error_and_keeps_its_context(tmp_path):
    assert not issubclass(NasnetError, ValueError)
    (tmp_path / "config.json").write_text(json.dumps({"children": 0}))
    with pytest.raises(NasnetError, match=r"config\.json: cannot read the run's config \(`children` must be"):
        load_run_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(NasnetError, match="cannot read the run's config"):
        load_run_config(tmp_path)


def test_payloads_and_results_are_checked_where_they_cross_the_executor_boundary():
    from nasnet.search.contract import OutcomeKind, check_payload, check_result
    from nasnet.search.executors.base import Outcome, outcome_from_json, run_payload

    with pytest.raises(NasnetError, match="'fn' is required"):
        check_payload({"genotype": "nasnet-a"})
    for key, value in (("seed", "3"), ("seed", True), ("genotype", 7), ("train", []), ("rung_epochs", 1.5)):
        with pytest.raises(NasnetError, match=f"'{key}' must be"):
            check_payload({"fn": "m:f", key: value})
    assert check_payload({"fn": "m:f", "seed": 3, "target": "anything"})["target"] == "anything"   # a child's own
    assert check_result({"reward": 0.5, "loss_curve": [1.0]})["reward"] == 0.5        # status defaults to done
    for bad, key in (({"status": "great"}, "status"), ({"reward": "0.9"}, "reward"), ({"error": 3}, "error")):
        with pytest.raises(NasnetError, match=f"'{key}' must be"):
            check_result(bad)

    def run(payload):
        return outcome_from_json("k", run_payload(json.dumps(payload)))

    ok = run({"fn": "test_search_contracts:reports", "result": {"status": "diverged", "reward": None}})
    assert ok.kind is OutcomeKind.RESULT and ok.kind == "result" and ok.result["status"] == "diverged"
    broken = run({"fn": "test_search_contracts:reports", "result": {"status": "finished", "reward": 1.0}})
    assert broken.kind is OutcomeKind.ERROR and "'status' must be one of done, diverged, failed" in broken.error
    assert "'seed' must be an integer" in run({"fn": "test_search_contracts:reports", "seed": "1"}).error
    assert Outcome("k", "infra").kind is OutcomeKind.INFRA


def reports(payload):
    """A child that returns what its payload says."""
    return payload.get("result", {"reward": 0.5})


def test_a_child_breaking_the_contract_fails_its_trial_with_the_key_named(tmp_path):
    from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
    from nasnet.search.store import TrialStore

    config = SearchConfig(children=3, strategy=StrategyConfig(name="random"), executor=ExecutorConfig(name="serial"),
                          child=ChildConfig(fn="test_search_contracts:reports",
                                            options={"result": {"status": "finished", "reward": 1.0}}))
    summary = run_search(config, tmp_path)
    assert summary.counts["failed"] == 3 and summary.best_trial is None
    with TrialStore(tmp_path / "trials.db", readonly=True) as store:
        assert all("'status' must be one of" in t.error and t.status == "failed" for t in store.trials())
