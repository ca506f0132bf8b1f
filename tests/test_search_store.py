"""The trial store on its own: one `finish` records a first job, an ASHA rung and a retraining alike and
reads back the Result it was given; result sequence numbers order what the strategy is told; a
version-2 store written in the previous table layout opens unchanged, and a new store has the same
columns, types, keys and indexes."""

import sqlite3

import pytest

from nasnet.search.records import FinalTrial, Job, Result, RungResult, Stage, Status, Trial
from nasnet.search.store import TrialStore

# The version-2 tables exactly as the previous nasnet created them (column order included).
V2_PREVIOUS_LAYOUT = """
CREATE TABLE trials (id INTEGER PRIMARY KEY, genotype TEXT NOT NULL, decisions TEXT NOT NULL, log_prob REAL,
    entropy REAL, policy_version INTEGER, payload TEXT, status TEXT NOT NULL DEFAULT 'queued', reward REAL,
    policy_reward REAL, metrics TEXT, error TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    cached_from INTEGER, result_seq INTEGER UNIQUE, created_at REAL, started_at REAL, finished_at REAL,
    rung INTEGER, epochs INTEGER, accuracy REAL, cost REAL);
CREATE TABLE rungs (trial_id INTEGER NOT NULL, rung INTEGER NOT NULL, epochs INTEGER NOT NULL, payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued', reward REAL, accuracy REAL, cost REAL, policy_reward REAL, metrics TEXT,
    error TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0, result_seq INTEGER, created_at REAL,
    started_at REAL, finished_at REAL, PRIMARY KEY (trial_id, rung));
CREATE TABLE updates (version INTEGER PRIMARY KEY, time REAL, num_results INTEGER, told INTEGER, mean_reward REAL,
    baseline REAL, entropy REAL, loss REAL, seconds REAL, kl REAL, clip_fraction REAL);
CREATE TABLE final (trial_id INTEGER NOT NULL, repeat INTEGER NOT NULL DEFAULT 0, genotype TEXT NOT NULL,
    search_reward REAL, epochs INTEGER, payload TEXT, status TEXT NOT NULL DEFAULT 'queued', reward REAL,
    accuracy REAL, cost REAL, metrics TEXT, error TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL, started_at REAL, finished_at REAL, PRIMARY KEY (trial_id, repeat));
CREATE INDEX trials_genotype ON trials(genotype);
CREATE INDEX trials_status ON trials(status);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta VALUES ('schema_version', '2');
INSERT INTO trials (id, genotype, decisions, payload, status, reward, policy_reward, metrics, worker, attempts,
    result_seq, created_at, started_at, finished_at, rung, epochs, accuracy)
    VALUES (1, 'g1', '[0, 1]', '{"fn": "m:f"}', 'done', 0.5, 0.5, '{"reward": 0.5}', 'h:1', 1, 1, 1.0, 2.0, 3.0, 0, 2,
            0.5);
INSERT INTO trials (id, genotype, decisions, payload, status, created_at)
    VALUES (2, 'g2', '[1, 0]', '{}', 'queued', 4.0);
INSERT INTO final (trial_id, repeat, genotype, search_reward, epochs, payload, status, reward, accuracy)
    VALUES (1, 0, 'g1', 0.5, 6, '{}', 'done', 0.75, 0.75);
"""


def _add(store, genotype="g", decisions=(0, 1)):
    return store.add(genotype, decisions, -1.0, 2.0, 0, lambda tid: {"fn": "m:f", "seed": tid})


def test_one_finish_records_every_stage_and_reads_back_its_result(tmp_path):
    with TrialStore(tmp_path / "trials.db") as store:
        tid = _add(store)
        store.mark_running(Job(Stage.SEARCH, tid))
        first = Result(Status.DONE, 0.5, 0.5, None, {"reward": 0.5, "epochs_completed": 1}, None, "h:1", 10.0, 11.0,
                       epochs=1, policy_reward=0.5)
        store.finish(Job(Stage.SEARCH, tid), first, first_rung=1)
        trial = store.get(tid)
        assert isinstance(trial, Trial) and trial.key == Job(Stage.SEARCH, tid)
        assert trial.result == first and (trial.rung, trial.result_seq, trial.attempts) == (0, 1, 1)
        rung0 = store.job(Job(Stage.RUNG, tid, 0))        # an ASHA first job is also its rung-0 job
        assert isinstance(rung0, RungResult) and rung0.result == first and rung0.epochs == 1

        promotion = store.enqueue(Job(Stage.RUNG, tid, 1), 3, {"fn": "m:f", "rung_epochs": 3})
        assert store.queued() == [promotion]
        store.mark_running(promotion)
        told = Result(Status.DONE, 0.8, 0.8, None, {"reward": 0.8}, None, "h:2", 12.0, 13.0, policy_reward=0.3)
        store.finish(promotion, told)
        rung1 = store.job(promotion)
        assert rung1.result == Result(**{**told.__dict__, "epochs": 3}) and rung1.result_seq == 2
        trial = store.get(tid)                          # a successful promotion becomes the trial's result
        assert (trial.reward, trial.rung, trial.epochs, trial.metrics) == (0.8, 1, 3, {"reward": 0.8})
        assert [(t.id, r) for t, r in store.results_after(0)] == [(tid, 0.5), (tid, 0.3)]

        retraining = store.enqueue(Job(Stage.FINAL, tid, 0), 6, {"fn": "m:f", "seed": 99})
        failed = Result(Status.FAILED, error="boom", worker="h:3", started_at=20.0, finished_at=21.0)
        store.finish(retraining, failed)
        final = store.job(retraining)
        assert isinstance(final, FinalTrial) and final.result == Result(**{**failed.__dict__, "epochs": 6})
        assert (final.genotype, final.search_reward, final.result_seq) == ("g", 0.8, None)

        with pytest.raises(ValueError, match="terminal"):
            store.finish(Job(Stage.SEARCH, tid), Result(Status.RUNNING))
        with pytest.raises(KeyError):
            store.job(Job(Stage.FINAL, tid, 5))


def test_a_repeated_architecture_records_the_reused_result(tmp_path):
    with TrialStore(tmp_path / "trials.db") as store:
        a, b = _add(store), _add(store)
        store.finish(Job(Stage.SEARCH, a), Result(Status.DONE, 0.4, 0.4, metrics={"reward": 0.4}, epochs=2,
                                                  policy_reward=0.4))
        reused = Result(Status.DONE, 0.4, 0.4, metrics={"reward": 0.4}, worker="cache", epochs=0, policy_reward=0.4,
                        cached_from=a)
        store.finish(Job(Stage.SEARCH, b), reused)
        trial = store.get(b)
        assert trial.result.cached_from == a and trial.seconds is None and trial.epochs == 0
        assert store.first_with_genotype("g", before=b).id == a and store.uncached() == 1


def _layout(path):
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: (sorted(tuple(c)[1:] for c in db.execute(f"PRAGMA table_info({t})")),
                    sorted((i[2], i[3]) for i in db.execute(f"PRAGMA index_list({t})")))
                for t in tables}
    finally:
        db.close()


def test_a_version_2_store_of_the_previous_layout_opens_and_keeps_its_schema(tmp_path):
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript(V2_PREVIOUS_LAYOUT)
    con.close()
    TrialStore(tmp_path / "new.db").close()
    assert _layout(old) == _layout(tmp_path / "new.db")       # same columns, types, defaults, keys, indexes
    with TrialStore(old, readonly=True) as store:
        assert store.schema == 2 and [t.status for t in store.trials()] == [Status.DONE, Status.QUEUED]
    with TrialStore(old) as store:                            # a writer: nothing to migrate, and it goes on
        assert store.get(1).result == Result(Status.DONE, 0.5, 0.5, None, {"reward": 0.5}, None, "h:1", 2.0, 3.0,
                                             epochs=2, policy_reward=0.5)
        assert store.finals()[0].reward == 0.75 and store.queued() == [Job(Stage.SEARCH, 2)]
        store.finish(Job(Stage.SEARCH, 2), Result(Status.DIVERGED, error="nan", policy_reward=0.0))
        assert store.get(2).result_seq == 2 and store.counts()["diverged"] == 1
    assert _layout(old) == _layout(tmp_path / "new.db")
