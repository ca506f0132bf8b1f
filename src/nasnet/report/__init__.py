"""The run report: a search's run directory (or several, overlaid) as plots and one HTML page.

    from nasnet.report import make_report
    result = make_report(["runs/compare/ppo-seed0", "runs/compare/random-seed0"], "runs/compare/report")

writes into the output folder `report.html` (self-contained: images inlined as data URIs, no
network), the plots as PNG files (`rewards.png`: reward against children sampled with best /
top-5 / top-25 so far, the paper's Figure 6 view; `entropy.png`; `failures.png`;
`throughput.png`) and the best cells as SVG (`cell-*.svg`, drawn like Figure 4). Every file is
replaced atomically, so a browser or a copy never sees half a file; the run directories are only
read (see `data.load_run`), so a report can be made while the search is running.

Modules: data (reading a run), figures (the plots), html (the page), watch (regenerating while a
search runs).
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from ..arch.space import load_architecture
from ..atomic import make_folder, write_bytes
from ..errors import NasnetError
from ..paths import check_writable_dir, output_folder
from .data import RunData, find_runs, load_run, run_names
from .drawing import draw_genotype
from .figures import FIGURES
from .html import Image, render
from .plots import _pyplot

__all__ = ["ReportResult", "make_report", "find_runs", "load_run", "default_out_dir"]

REPORT_FILE = "report.html"
PNG_DPI = 110


@dataclass
class ReportResult:
    path: Path                 # report.html
    runs: list[RunData]
    files: list[Path]          # everything written (plots, cells, the page)
    seconds: float

    @property
    def trials(self) -> int:
        return sum(len(r.trials) for r in self.runs)


def default_out_dir(paths: list[Path]) -> Path:
    """Where a report goes without --out: RUN_DIR/report, or the shared parent's report folder."""
    if len(paths) == 1:
        return Path(paths[0]) / "report"
    parents = {Path(p).resolve().parent for p in paths}
    if len(parents) == 1:
        return Path(paths[0]).parent / "report"
    raise NasnetError("these runs live in different folders; say where the report goes with --out DIR")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, metadata={"Software": "nasnet report"})
    _pyplot().close(fig)
    return buf.getvalue()


def _cell_choices(run: RunData, k: int) -> list[tuple[str, str, str]]:
    """(genotype, title, caption) of the cells to draw for one run: its k best distinct architectures.

    When the top-k stage has picked a winner (best.json, stage "final"), it comes first.
    """
    out, seen = [], set()
    best = run.best or {}
    if best.get("stage") == "final" and best.get("genotype"):
        search = best.get("search_reward")
        out.append((best["genotype"], f"{run.label}: trial {best.get('trial')}, best after the top-k stage",
                    f"{run.label}, trial {best.get('trial')}: reward {best['reward']:.4f} after retraining"
                    + (f" (search reward {search:.4f})" if search is not None else "")))
        seen.add(best["genotype"])
    for rank, t in enumerate(run.top(k + len(seen)), start=1):
        if t.genotype in seen or len(out) >= k:
            continue
        seen.add(t.genotype)
        out.append((t.genotype, f"{run.label}: trial {t.id}, reward {t.reward:.4f}",
                    f"{run.label}, trial {t.id}: #{rank} by search reward, {t.reward:.4f}"))
    return out


def _draw_cells(runs: list[RunData], out_dir: Path, k: int):
    """Draw (or reuse, by content hash) the best cells as SVG; returns html.Image entries."""
    images = []
    for run in runs:
        for text, title, caption in _cell_choices(run, k):
            name = "cell-" + hashlib.sha1(f"{text}\n{title}".encode()).hexdigest()[:12] + ".svg"
            path = out_dir / name
            if not path.is_file():
                draw_genotype(load_architecture(text), path, title=title)
            images.append(Image(name, title, "image/svg+xml", path.read_bytes(), name, caption, text))
    return images


def make_report(paths, out_dir=None, refresh: float | None = None, cells: int = 3,
                page_size: int = 500) -> ReportResult:
    """Read the run directories in `paths` and write the report into `out_dir` (see the module doc).

    `refresh` (seconds) adds a meta tag that makes a browser reload the page (used while watching);
    `cells` is how many of each run's best distinct architectures are drawn; the trials table shows
    `page_size` rows at a time.
    """
    start = time.perf_counter()
    paths = [Path(p) for p in paths]
    runs = [load_run(p, name) for p, name in zip(paths, run_names(paths))]
    if out_dir is None:   # a run directory may be read-only: then the report goes elsewhere
        out_dir = default_out_dir(paths)
        check_writable_dir(out_dir, "the run can still be read: give --out DIR for the report")
    out_dir = output_folder(out_dir)
    make_folder(out_dir)
    written, plots = [], []
    captions = {
        "rewards": "Each point is a child; lines: the best reward so far and the mean of the 5 and 25 best distinct "
                   "architectures so far. Failed (x) and diverged (v) children are marked along the bottom.",
        "entropy": "Entropy of the policy each architecture was sampled from, averaged between updates; the "
                   "controller's minibatch mean reward against its moving-average baseline; how far each update "
                   "moved the policy (KL divergence, nats, summed over the decisions); the share of PPO's "
                   "probability ratios outside the clipping range.",
        "cost": "Each successful child's accuracy against its cost; the line joins the accuracy-cost front (no "
                "other child is both as accurate and cheaper); dotted: the run's cost target.",
        "rungs": "ASHA: each trial's result at every rung it reached, joined by a line, and the results per rung.",
        "failures": "Failed (the child raised, or gave up after retries) and diverged (NaN loss) children; retried "
                    "attempts are infrastructure failures that were run again.",
        "throughput": "Seconds from a child's start to its result, and finished children per hour.",
    }
    for key, title, build, when in FIGURES:
        if when is not None and not when(runs):
            (out_dir / f"{key}.png").unlink(missing_ok=True)      # a figure of an earlier report's runs
            continue
        data = _png(build(runs))
        path = out_dir / f"{key}.png"
        write_bytes(path, data)
        written.append(path)
        plots.append(Image(key, title, "image/png", data, path.name, captions.get(key, "")))
    drawn = _draw_cells(runs, out_dir, cells) if cells > 0 else []
    written += [out_dir / c.file for c in drawn]
    page = out_dir / REPORT_FILE
    write_bytes(page, render(runs, plots, drawn, refresh=refresh, page_size=page_size).encode("utf-8"))
    written.append(page)
    keep = {c.file for c in drawn}
    for old in out_dir.glob("cell-*.svg"):        # drawings of cells no longer among the best
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return ReportResult(page, runs, written, time.perf_counter() - start)
