"""The search as a session: what opening a run builds is whole or nothing (a refused open leaves the run
unlocked and unchanged), an infrastructure failure is a Retry until the retries run out, and progress and
notes reach the callback the caller supplies, never stderr."""

import pytest

from nasnet.errors import NasnetError
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig, run_search
from nasnet.search.config import EarlyStopConfig
from nasnet.search.contract import OutcomeKind
from nasnet.search.executors import Outcome
from nasnet.search.progress import SearchProgress
from nasnet.search.records import Status
from nasnet.search.session import Session
from nasnet.search.workqueue import Retry, classify

ANALYTIC = "nasnet.search.children.analytic:analytic_child"


def analytic(children=6, **kw):
    kw.setdefault("executor", ExecutorConfig(name="serial"))
    return SearchConfig(children=children, strategy=StrategyConfig(name="random"), child=ChildConfig(fn=ANALYTIC), **kw)


class Recorder(SearchProgress):
    def __init__(self):
        self.statuses, self.notes, self.closed = [], [], 0

    def update(self, status):
        self.statuses.append(status)

    def note(self, message):
        self.notes.append(message)

    def close(self):
        self.closed += 1


def test_progress_and_notes_go_to_the_callback_not_to_stderr(tmp_path, capfd):
    first = Recorder()
    run_search(analytic(children=4), tmp_path, progress=first)
    assert [s.finished for s in first.statuses] == [0, 1, 2, 3, 4] and {s.total for s in first.statuses} == {4}
    assert first.statuses[-1].best is not None and first.statuses[-1].promotions is None and first.closed == 1
    again = Recorder()
    config = analytic(children=8, early_stop=EarlyStopConfig("asha", (1, 3), 3), top_k=1, final_epochs=3)
    with pytest.raises(NasnetError):             # ASHA cannot be added to a run that was made without it
        run_search(config, tmp_path, progress=again)
    run_search(analytic(children=6, top_k=1, final_epochs=3), tmp_path, progress=again)
    assert again.notes[0].startswith(f"resuming {tmp_path}: 4 of 6 children finished")
    assert any(n.startswith("top-1 stage: retraining 1 architecture(s)") for n in again.notes)
    assert again.statuses[0].finished == 4 and again.statuses[-1].finished == 6
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_refused_open_leaves_the_run_unlocked_and_unchanged(tmp_path):
    run_search(analytic(children=6), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".pt", ".csv")}
    with pytest.raises(NasnetError, match="already holds 6 trials"):
        Session(analytic(children=5), tmp_path, say=print)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".json", ".pt", ".csv")} == before
    with Session(analytic(children=6), tmp_path, say=print) as session:    # the lock was released
        assert session.resumed and session.store.count() == 6 and session.strategy.asked >= 6


def test_an_infrastructure_failure_is_a_retry_until_the_retries_run_out():
    config = analytic(executor=ExecutorConfig(name="serial", max_retries=1))
    lost = Outcome("k", OutcomeKind.INFRA, error="worker died")
    retry = classify(lost, 1, None, config)
    assert isinstance(retry, Retry) and retry.error == "attempt 1: worker died"
    failed = classify(lost, 2, retry.error, config)
    assert not isinstance(failed, Retry) and failed.status is Status.FAILED
    assert failed.error.startswith("infrastructure failure, gave up after 2 attempts:\nattempt 1: worker died\n")
    done = classify(Outcome("k", "result", {"reward": 0.75}, worker="h:1"), 2, retry.error, config)
    assert (done.status, done.reward, done.error, done.worker) == (Status.DONE, 0.75, retry.error, "h:1")
    diverged = classify(Outcome("k", "result", {"status": "diverged", "error": "nan"}), 1, None, config)
    assert (diverged.status, diverged.error) == (Status.DIVERGED, "nan")
