"""Helpers of the ASHA tests: a training child that logs what it trained, and the invariants of an ASHA run."""

import csv
import json

from conftest import trial_rows
from nasnet.search.asha import next_promotion
from nasnet.search.children.train import train_child


def logged_train_child(payload):
    """train_child, then one JSON line in payload["log"]: the rung and the epochs this execution trained.

    A line is written only when the execution finished; one killed mid-rung leaves none."""
    result = train_child(payload)
    line = {"genotype": payload["genotype"], "rung_epochs": payload.get("rung_epochs"),
            "resumed": result["resumed_from_epoch"], "completed": result["epochs_completed"]}
    with open(payload["log"], "a") as f:
        f.write(json.dumps(line) + "\n")
    return result


def rows_at(rows, tid, rung):
    return next(r for r in rows if r["trial_id"] == tid and r["rung"] == rung)


def check_asha(run_dir, rungs, eta, serial=True, budget=False):
    """What every ASHA run must satisfy, read back from its store, CSV and checkpoints (`budget`: an epoch
    budget may have left promotions undone)."""
    trials = trial_rows(run_dir)
    rows = trial_rows(run_dir, "SELECT * FROM rungs ORDER BY rowid")
    by = {(r["trial_id"], r["rung"]): r for r in rows}
    for t in trials:
        reached = sorted(k for (tid, k) in by if tid == t["id"])
        if t["cached_from"] is not None:
            assert reached == [] and t["epochs"] == 0
            continue
        assert reached == list(range(len(reached))) and reached, t["id"]
        for k in reached:
            r = by[(t["id"], k)]
            assert r["epochs"] == rungs[k]
            if k and r["status"] == "done":
                m = json.loads(r["metrics"])
                assert m["epochs_completed"] == rungs[k] and m["resumed_from_epoch"] == rungs[k - 1]
        top = max(k for k in reached if by[(t["id"], k)]["status"] == "done")
        assert t["rung"] == top and t["epochs"] == rungs[top] and t["reward"] == by[(t["id"], top)]["reward"]
        ckpt = json.loads((run_dir / "checkpoints" / f"trial-{t['id']:06d}.ckpt").read_text())
        assert ckpt["epochs"] == rungs[max(reached)] and ckpt["genotype"] == t["genotype"]
    standings = [(r["trial_id"], r["rung"], r["status"], r["reward"]) for r in rows]
    if not budget:
        assert next_promotion(standings, len(rungs), eta) is None       # nothing promotable was left behind
    if serial:   # each promotion was in its rung's top 1/eta when it was made
        for p in (r for r in rows if r["rung"] > 0):
            below = sorted(((-r["reward"], r["trial_id"]) for r in rows if r["rung"] == p["rung"] - 1
                            and r["status"] == "done" and r["finished_at"] <= p["created_at"]))
            assert (-by[(p["trial_id"], p["rung"] - 1)]["reward"], p["trial_id"]) in below[:len(below) // eta]
    with open(run_dir / "trials.csv") as f:
        table = list(csv.DictReader(f))
    assert [(int(r["rung"]), int(r["epochs"])) for r in table] == [(t["rung"], t["epochs"]) for t in trials]
    return trials, rows


