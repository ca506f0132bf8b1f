"""Search configurations against each other at equal budgets and seeds (paper §4.4, Figure 6).

`compare(configure, variants, seeds, root)` runs one search per variant and seed, each in its own
run directory under `root` (``ppo-seed0``, ``ppo-lr0.005-asha-seed0``, ...; an interrupted
comparison continues where it stopped). A `Variant` is a strategy with its settings
(`parse_variant("ppo:lr=0.005")`), with or without ASHA. It writes ``compare.csv`` (per run, one
row per result in arrival order: nasnet.search.curves.budget_curve) and ``compare.json`` (each
run's final numbers and its pick's retraining). Why runs are compared at equal child-epochs, and
on their picks retrained with fresh seeds, is written in docs/search.md ("Budgets", "The top-k
stage and the pick"). `nasnet compare` is this plus printing.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..atomic import make_folder, replacing, write_text
from ..errors import NasnetError
from . import run_dir as files
from ..options import settings
from .choices import EARLY_STOPS, STRATEGIES
from .config import EarlyStopConfig, SearchConfig, StrategyConfig
from .curves import budget_curve
from .progress import ProgressBar, SearchProgress
from .rules import no_effect, quoted
from .store import Status, TrialStore

KS = (1, 5, 25)
LAST = 20
CSV_FILE = files.COMPARE_CSV
JSON_FILE = files.COMPARE_JSON
CSV_COLUMNS = ("run", "strategy", "early_stop", "seed", "results", "children", "epochs", "best", "top5_mean",
               "top25_mean", f"last{LAST}_mean")

# Variant options: the `nasnet search` flag names (without --) and the StrategyConfig fields they set.
OPTIONS = {s.option.flag[2:]: s.path for s in settings(StrategyConfig) if s.path != "name"}


@dataclass(frozen=True)
class Variant:
    """A strategy with its settings, with or without ASHA; `label` names its run directories."""

    strategy: str
    options: dict = field(default_factory=dict)     # StrategyConfig field -> value
    early_stop: str = "none"

    @property
    def label(self) -> str:
        inverse = {v: k for k, v in OPTIONS.items()}
        parts = [self.strategy] + [f"{inverse[k].replace('-', '')}{v:g}" if isinstance(v, float)
                                   else f"{inverse[k].replace('-', '')}{v}" for k, v in sorted(self.options.items())]
        if self.early_stop != "none":
            parts.append(self.early_stop)
        return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))


def parse_variant(text: str, early_stop: str = "none") -> Variant:
    """"NAME[:OPTION=VALUE...]", e.g. "ppo:lr=0.005" or "evolution:population=16:sample-size=4"."""
    name, *items = [t.strip() for t in text.split(":")]
    STRATEGIES.check(name, where=f" in {text!r}")
    EARLY_STOPS.check(early_stop)
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS:
            raise NasnetError(f"{text!r}: options read OPTION=VALUE with OPTION one of {', '.join(OPTIONS)}; "
                              f"got {item!r}")
        try:
            options[OPTIONS[key]] = int(value) if re.fullmatch(r"-?\d+", value) else float(value)
        except ValueError:
            raise NasnetError(f"{text!r}: {key} needs a number, got {value!r}") from None
    return Variant(name, options, early_stop)


def run_events(trials: Sequence, rungs: Sequence, first_epochs: int | None) -> list[dict]:
    """A run's results in arrival order, for `budget_curve`: each trial's first result (by result_seq; under
    ASHA its first rung's) and each ASHA promotion's (by finish time), with the child-epochs each cost
    (a reused result costs none)."""
    by_key = {(r.trial_id, r.rung): r for r in rungs}
    events = []
    for t in trials:
        if t.result_seq is None:
            continue
        first = by_key.get((t.id, 0))
        reward = (first.reward if first is not None else t.reward) if t.status is Status.DONE else None
        cost = 0 if t.cached_from is not None else (first_epochs or t.epochs or 0)
        events.append((t.finished_at or 0.0, t.result_seq, {"trial": t.id, "reward": reward, "epochs": cost,
                                                            "first": True, "repeat": t.cached_from is not None}))
    for r in rungs:
        if r.rung == 0 or not r.status.terminal:
            continue
        below = by_key.get((r.trial_id, r.rung - 1))
        events.append((r.finished_at or 0.0, r.result_seq or 0, {
            "trial": r.trial_id, "reward": r.reward if r.status is Status.DONE else None,
            "epochs": r.epochs - (below.epochs if below else 0), "first": False, "repeat": False}))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def _run_config(configure, variant: Variant, seed: int, run_dir: Path, asha: EarlyStopConfig | None
                ) -> SearchConfig:
    """One run's config: the base (continuing the run's own when it exists), its variant and seed; checked as
    `nasnet search` checks a start (files.check_start), so that no run starts before every run could."""
    config = configure(files.load_run_config(run_dir))
    changes: dict[str, Any] = {"strategy.name": variant.strategy, "seed": seed,
                               **{f"strategy.{k}": v for k, v in variant.options.items()}}
    if variant.early_stop == "asha":
        changes.update({"early_stop.name": "asha", "early_stop.rungs": asha.rungs,
                        "early_stop.eta": asha.eta, "early_stop.tell": asha.tell})
    else:
        changes.update({"early_stop.name": "none", "early_stop.rungs": ()})
    if config.epoch_budget:
        first = asha.rungs[0] if variant.early_stop == "asha" else config.first_job_epochs
        changes["children"] = max(1, config.epoch_budget // max(1, first or 1))
    config = config.replace(**changes)
    for name in (f"strategy.{k}" for k in variant.options):
        reason = config.unused(name)
        if reason:
            raise NasnetError(f"{variant.label}: {no_effect(quoted(name), reason)}")
    files.check_start(config, run_dir)
    return config


def _check_plan(variants: Sequence[Variant], seeds: Sequence[int], root: Path, asha: EarlyStopConfig | None) -> None:
    """A comparison's variants, seeds and folder, refused before anything runs."""
    if any(v.early_stop == "asha" for v in variants) and (asha is None or not asha.rungs):
        raise NasnetError(f"the ASHA variants need rungs ({quoted('early_stop.rungs')} E1,E2,...)")
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise NasnetError(f"two variants share a name: {', '.join(labels)}")
    twice = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if twice:
        raise NasnetError(f"seed {', '.join(map(str, twice))} is given twice: each seed is one run of every variant")
    if files.is_run_dir(root) or (root / files.CONFIG_FILE).is_file():
        held = files.STORE_FILE if files.is_run_dir(root) else files.CONFIG_FILE
        raise NasnetError(f"{root} is a run directory (it holds {held}); give the comparison a folder of its own")


def _summary_row(variant: Variant, seed: int, run_dir: Path, curve: list[dict], counts: dict[str, int]
                 ) -> dict[str, Any]:
    """compare.json's row of one run: where its curve ended, its failures, its top-k winner and pick."""
    last = curve[-1] if curve else {}
    best = files.read_best(run_dir) or {}
    pick = best.get("pick") or {}
    return {"run": variant.label, "strategy": variant.strategy, "options": variant.options,
            "early_stop": variant.early_stop, "seed": seed, "run_dir": str(run_dir),
            "children": last.get("children"), "epochs": last.get("epochs"),
            **{f"top{k}": last.get(f"top{k}") for k in KS}, f"last{LAST}": last.get(f"last{LAST}"),
            "failed": counts["failed"] + counts["diverged"],
            "final_reward": best.get("reward") if best.get("stage") == "final" else None,
            "pick_trial": pick.get("trial"), "pick_mean": pick.get("mean"), "pick_std": pick.get("std"),
            "pick_rewards": pick.get("rewards")}


def compare(configure: Callable[[SearchConfig | None], SearchConfig], variants: Sequence[Variant],
            seeds: Sequence[int], root: str | Path, asha: EarlyStopConfig | None = None,
            progress: bool | SearchProgress = False, check: Callable[[list[SearchConfig]], None] | None = None,
            log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every variant for every seed and return one summary row per run.

    configure(stored) gives each run's config before its variant and seed are set: `stored` is the
    config of a run directory that already exists (to continue it), else None. `asha` holds the
    rungs, eta and what the strategy is told, for the variants with ASHA (its last rung must be the
    child's epochs, which every variant then trains). With an epoch budget in the config, a run may
    sample as many children as that budget allows at its first job's epochs. Seeds must differ, and `root`
    may not be a run directory itself. Every run's config is made and checked (`check(configs)` too, when
    given) before the first run starts. Each run reports to `progress` (True: a ProgressBar on stderr)
    and its notes, and a line naming each run as it starts, go to `log` (default: the progress's notes).
    """
    from .loop import run_search

    root = Path(root)
    _check_plan(variants, seeds, root, asha)
    runs = [(seed, variant, root / f"{variant.label}-seed{seed}") for seed in seeds for variant in variants]
    configs = [_run_config(configure, variant, seed, run_dir, asha) for seed, variant, run_dir in runs]
    if check is not None:
        check(configs)
    progress = progress if isinstance(progress, SearchProgress) else ProgressBar() if progress else SearchProgress()
    say = log or progress.note
    rows, summary = [], []
    for (seed, variant, run_dir), config in zip(runs, configs):
        say(f"== {variant.label}, seed {seed}: {run_dir}")
        result = run_search(config, run_dir, progress=progress, log=log)
        with TrialStore(run_dir / files.STORE_FILE, readonly=True) as store:
            curve = budget_curve(run_events(store.trials(), store.rungs(), config.first_job_epochs), KS, LAST)
        rows += [[variant.label, variant.strategy, variant.early_stop, seed, p["results"], p["children"],
                  p["epochs"]] + [p[f"top{k}"] for k in KS] + [p[f"last{LAST}"]] for p in curve]
        summary.append(_summary_row(variant, seed, run_dir, curve, result.counts))
    make_folder(root)
    with replacing(root / CSV_FILE) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        w.writerows(rows)
    write_text(root / JSON_FILE, json.dumps(summary, indent=2) + "\n")
    return summary
