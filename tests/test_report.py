"""The run report (`nasnet report`): plots, page, overlays, --watch, --report."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, default_sigint, trial_rows
from nasnet.arch.genotype import Genotype
from nasnet.report import make_report
from nasnet.report.data import load_run
from nasnet.report.drawing import op_labels
from nasnet.report.figures import failures_figure, rewards_figure
from nasnet.search import ChildConfig, ExecutorConfig, SearchConfig, StrategyConfig
from nasnet.search.loop import Search
from nasnet.search.store import TrialStore
from report_runs import ANALYTIC, compare_runs, faulty_run

SVG = "{http://www.w3.org/2000/svg}"
PLOTS = ("rewards.png", "entropy.png", "failures.png", "throughput.png")


class Page(HTMLParser):
    """What the tests read back from report.html: trial rows, images, links, scripts, meta tags."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.imgs, self.links, self.metas, self.scripts = [], [], [], [], []
        self._in_trials = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "trials":
            self._in_trials = True
        elif tag == "tr" and self._in_trials and a.get("class"):
            self._row = {"status": a["class"], "cells": []}
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.imgs.append(a)
        elif tag in ("a", "link"):
            self.links.append(a.get("href"))
        elif tag == "meta":
            self.metas.append(a)
        elif tag == "script":
            self.scripts.append(a)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._in_trials = False

    @property
    def refreshing(self) -> bool:
        return any(m.get("http-equiv") == "refresh" for m in self.metas)


def check_self_contained(text: str, out_dir: Path) -> Page:
    page = Page(text)
    assert page.imgs and all(i["src"].startswith("data:image/") for i in page.imgs)
    assert all(not s.get("src") for s in page.scripts)            # inline scripts only
    for href in page.links:                                        # anchors and the files beside the page
        assert href.startswith("#") or (out_dir / href).is_file(), href
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text) and "@import" not in text
    return page


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    return faulty_run(tmp_path_factory.mktemp("faulty") / "run")


def test_report_shows_failed_and_diverged_trials(faulty, tmp_path):
    trials = trial_rows(faulty)
    by = {s: [t for t in trials if t["status"] == s] for s in ("done", "failed", "diverged")}
    assert by["done"] and by["failed"] and by["diverged"]       # the faulty child did fail

    result = make_report([faulty], tmp_path / "out", cells=2)
    out = tmp_path / "out"
    for name in PLOTS:
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 600
    cells = sorted(out.glob("cell-*.svg"))
    assert len(cells) == 2
    best = max(by["done"], key=lambda t: (t["reward"], -t["id"]))
    text = (out / "report.html").read_text()
    assert best["genotype"] in text and f"trial {best['id']}" in text
    # the best cell is drawn, with every op label of its genotype
    drawn = [Counter("".join(e.itertext()).strip() for e in ET.parse(c).getroot().iter(f"{SVG}text")) for c in cells]
    mine = [d for d in drawn if any(f"trial {best['id']}," in label for label in d)]
    assert len(mine) == 1
    for op, n in Counter(op_labels(Genotype.parse(best["genotype"]))).items():
        assert mine[0][op] >= n, op

    page = check_self_contained(text, out)
    assert len(page.imgs) == len(PLOTS) + 2
    assert [r["cells"][0] for r in page.rows] == [str(t["id"]) for t in trials]
    assert [r["status"] for r in page.rows] == [t["status"] for t in trials]
    for row, t in zip(page.rows, trials):
        if t["status"] == "done":
            assert row["cells"][2] == f"{t['reward']:.4f}"
        else:
            assert row["cells"][2] == "" and row["cells"][10]          # no reward, an error shown
    assert "RuntimeError: injected fault: the child raised" in text
    assert "gave up after 2 attempts" in text                       # the retried OOM, full text in the title
    assert "loss became nan (injected fault)" in text
    summary = re.search(r"<table class=summary>.*?</table>", text, re.S).group(0)
    nums = re.findall(r"<td class=n>(\d+)</td>", summary)
    assert nums[:3] == [str(len(by["done"])), str(len(by["failed"])), str(len(by["diverged"]))]
    assert "complete" in summary and not page.refreshing
    assert result.trials == len(trials) and result.path == out / "report.html"


def test_plots_draw_what_the_store_holds(faulty):
    """The Figure 6 lines are the running best / top-5 mean of distinct rewards; failures are counted."""
    run = load_run(faulty)
    trials = trial_rows(faulty)
    fig = rewards_figure([run])
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_drawstyle() == "steps-post"]
    best_line = next(ln for ln in lines if ln.get_linestyle() == "-")
    seen, best = [], []
    for t in trials:
        if t["status"] == "done" and t["cached_from"] is None:
            seen.append(t["reward"])
        if seen:
            best.append((t["id"], max(seen)))
    assert list(zip(best_line.get_xdata(), best_line.get_ydata())) == best
    top5 = next(ln for ln in lines if ln.get_linestyle() == "--")
    distinct = [t["id"] for t in trials if t["status"] == "done" and t["cached_from"] is None]
    assert top5.get_xdata()[0] == distinct[4]              # the top-5 mean starts with the 5th reward
    assert top5.get_ydata()[-1] == pytest.approx(sum(sorted(seen)[-5:]) / 5)
    markers = {ln.get_marker(): len(ln.get_xdata()) for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "None"}
    assert markers == {"x": sum(t["status"] == "failed" for t in trials),
                       "v": sum(t["status"] == "diverged" for t in trials)}
    fig = failures_figure([run])
    ends = {ln.get_linestyle(): ln.get_ydata()[-1] for ln in fig.axes[0].get_lines()}
    assert ends["-"] == sum(t["status"] == "failed" for t in trials)
    assert ends["--"] == sum(t["status"] == "diverged" for t in trials)
    assert ends[":"] == sum(t["attempts"] - 1 for t in trials)          # retried out-of-memory attempts


def _whole_ticks(axis) -> bool:
    lo, hi = axis.get_view_interval()
    ticks = [t for t in axis.get_ticklocs() if lo <= t <= hi]
    return len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_plots_read_at_a_glance(faulty, tmp_path):
    """Entropy against the uniform policy's, whole counts on count axes, the empty
    failures panel's note clear of its zero line, the reward named for what the child measures."""
    from nasnet.arch.space import get_space
    from nasnet.report.figures import entropy_figure, throughput_figure

    run = load_run(faulty)
    uniform = sum(__import__("math").log(n) for n in get_space("nasnet-a").decision_sizes())
    for fig_runs in ([run], [run, run]):
        ax, ax2 = entropy_figure(fig_runs).axes[:2]
        lo, hi = ax.get_ylim()
        assert lo == 0 and uniform <= hi < uniform * 1.1          # the policy's whole possible range
        assert _whole_ticks(ax.xaxis) and _whole_ticks(ax2.xaxis)
    fig = entropy_figure([run])
    assert any("% of uniform" in t.get_text() for t in fig.legends[0].get_texts())
    # run names as long as `nasnet compare` writes them: the legend covers no panel, its labels or its axes
    long = [dataclasses.replace(run, name=f"ppo-batchsize10-lr0.005-asha-seed{i}-of-a-long-comparison")
            for i in range(2)]
    fig = entropy_figure(long)
    fig.canvas.draw()
    box = fig.legends[0].get_window_extent()
    assert not [a.get_title() for a in fig.axes if box.overlaps(a.get_tightbbox())]
    rewards = rewards_figure([run]).axes[0]
    assert _whole_ticks(rewards.xaxis) and rewards.get_ylabel() == "reward"      # the analytic child's reward
    failures = failures_figure([run]).axes
    assert _whole_ticks(failures[0].yaxis) and _whole_ticks(failures[1].xaxis)
    assert _whole_ticks(throughput_figure([run]).axes[0].xaxis)

    clean = compare_runs(tmp_path / "clean", children=20)[0]         # no failures at all
    ax = failures_figure([load_run(clean)]).axes[0]
    note = next(t for t in ax.texts if "no failed or diverged" in t.get_text())
    lo, hi = ax.get_ylim()
    zero_at = (0 - lo) / (hi - lo)                                   # the zero line, in axes fractions
    assert note.get_position()[1] - zero_at > 0.3 and lo <= 0 and zero_at < 0.05


def test_report_of_runs_without_results(tmp_path):
    # the store as a search creates it, before its first proposal (no config.json yet)
    empty = tmp_path / "empty"
    empty.mkdir()
    TrialStore(empty / "trials.db").close()
    result = make_report([empty], None)
    assert result.path == empty / "report" / "report.html"
    text = result.path.read_text()
    assert "no trials yet" in text and "not written yet" in text and "no best cell" in text
    assert Page(text).rows == []

    # every child fails
    broken = faulty_run(tmp_path / "broken", children=6, fault_raise=1.0)
    text = make_report([broken], tmp_path / "b").path.read_text()
    page = check_self_contained(text, tmp_path / "b")
    assert [r["status"] for r in page.rows] == ["failed"] * 6 and len(page.imgs) == len(PLOTS)

    # made in the middle of a search, as `nasnet search --report` does after a controller update
    snapshots = []
    cfg = SearchConfig(children=20, child=ChildConfig(fn=ANALYTIC), executor=ExecutorConfig(name="serial"),
                       strategy=StrategyConfig(batch_size=10))
    live = tmp_path / "live"
    Search(cfg, live, progress=False, on_update=lambda u: snapshots.append(
        make_report([live], cells=0).path.read_text())).run()
    assert len(snapshots) == 2
    first = Page(snapshots[0])
    assert len(first.rows) == 10 and "in progress or stopped: 10 of 20 finished" in snapshots[0]
    assert len(Page(snapshots[-1]).rows) == 20


def test_report_cli_overlays_runs_and_reports_errors_in_one_line(tmp_path, cli):
    root = tmp_path / "cmp"
    ppo, rnd = compare_runs(root)
    res = cli("report", str(root), "--cells", "1")      # a compare folder stands for all its runs
    assert res.returncode == 0, res.stderr
    assert f"report: {root / 'report' / 'report.html'} (2 runs, 80 trials, 0 failed or diverged" in res.stdout
    text = (root / "report" / "report.html").read_text()
    page = check_self_contained(text, root / "report")
    assert len(page.rows) == 80 and len(page.imgs) == len(PLOTS) + 2
    runs = [r["cells"][0] for r in page.rows]
    assert runs.count("ppo-seed0") == runs.count("random-seed0") == 40
    # overlaid: the Figure 6 axes hold a best-so-far line per run, in its own colour
    fig = rewards_figure([load_run(ppo), load_run(rnd)])
    solid = [ln for ln in fig.axes[0].get_lines() if ln.get_drawstyle() == "steps-post" and ln.get_linestyle() == "-"]
    assert [ln.get_color() for ln in solid] == ["C0", "C1"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][:2] == ["ppo-seed0", "random-seed0"]

    res = cli("report", str(ppo), str(rnd), "--out", str(tmp_path / "two"), "--cells", "0")
    assert res.returncode == 0, res.stderr
    assert len(Page((tmp_path / "two" / "report.html").read_text()).rows) == 80

    (tmp_path / "notarun").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "trials.db").write_text("not a database " * 100)
    other = tmp_path / "elsewhere" / "run"
    other.mkdir(parents=True)
    TrialStore(other / "trials.db").close()
    for args, message in [
        ([str(tmp_path / "missing")], "no such run directory"),
        ([str(tmp_path / "notarun")], "holds no trials.db: not a search run directory"),
        ([str(tmp_path / "bad")], "not a readable trial store"),
        ([str(ppo), str(other)], "say where the report goes with --out DIR"),
        ([str(ppo), "--cells", "-1"], "--cells: must be at least 0, got -1"),
    ]:
        res = cli("report", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "missing").exists() and not (tmp_path / "notarun" / "trials.db").exists()


def _line(stream, limit: float = 60.0) -> str:
    """The next line of a child's output, or a failure after `limit` seconds (not a test stuck forever)."""
    import threading

    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(limit)
    assert box, f"no line of output within {limit:g} s"
    return box[0]


def test_watch_keeps_the_report_current_while_a_search_runs(tmp_path):
    """`nasnet report --watch` started before the search: in-progress pages while it runs, the final one after."""
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    watcher = subprocess.Popen([sys.executable, "-m", "nasnet", "report", "--watch", str(run_dir), "--out", str(out),
                                "--interval", "0.2", "--refresh", "3", "--cells", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=default_sigint)
    try:
        early = [_line(watcher.stderr), _line(watcher.stderr)]     # up, and waiting for the run
        assert early[0].startswith("watching ") and early[1].startswith("waiting: "), early
        assert "no such run directory" in early[1]
        search = subprocess.Popen([sys.executable, "-m", "nasnet", "search", "--run-dir", str(run_dir),
                                   "--child", "analytic", "--child-set", "sleep=0.15", "--children", "20",
                                   "--strategy", "random", "--batch-size", "10", "--executor", "serial", "--quiet"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        page_file, seen = out / "report.html", []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if page_file.is_file():
                text = page_file.read_text()            # replaced atomically: always a whole page
                assert text.rstrip().endswith("</html>")
                page = Page(text)
                seen.append((len(page.rows), sum(r["status"] in ("done", "failed", "diverged") for r in page.rows),
                             page.refreshing))
                if search.poll() is not None and seen[-1][1] == 20:
                    break
            time.sleep(0.05)
        assert search.wait(timeout=60) == 0, search.stderr.read()
        assert seen and seen[-1][1] == 20, seen[-5:]
        assert any(finished < 20 for _, finished, _ in seen), "no report was made while the search ran"
        assert all(refreshing for *_, refreshing in seen)
    finally:
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "report updated" in err and "stopped watching; final report" in err
    final = Page(page_file.read_text())
    assert not final.refreshing and len(final.rows) == 20


def test_search_report_flag_writes_the_report(tmp_path, capsys):
    from nasnet.cli import main

    run_dir = tmp_path / "run"
    rc = main(["search", "--run-dir", str(run_dir), "--child", "analytic", "--children", "20", "--paper",
               "--executor", "serial", "--quiet", "--report", "--top-k", "2", "--final-epochs", "3"])
    assert rc == 0
    page = run_dir / "report" / "report.html"
    assert f"report: {page}" in capsys.readouterr().err
    text = page.read_text()
    parsed = Page(text)
    assert len(parsed.rows) == 20 and not parsed.refreshing and "complete" in text
    assert all((run_dir / "report" / p).is_file() for p in PLOTS)
    # the top-k stage: its table, and its winner drawn first
    final = re.search(r"<section id=final>.*?</section>", text, re.S).group(0)
    assert final.count("<tr class=done>") == 2
    best = json.loads((run_dir / "best.json").read_text())
    assert best["stage"] == "final"
    assert f"trial {best['trial']}: reward {best['reward']:.4f} after retraining" in text
    assert f"{best['reward']:.4f} (top-k stage)" in text
