"""The report's plots, one or several runs on the same axes (paper §4.4, Figure 6).

Each function takes a list of `RunData` and returns a matplotlib Figure (Agg). Run i is drawn in
colour C{i} everywhere, so the legend's run names carry across figures; line styles say what a
line is (best / top-5 / top-25, failed / diverged, ...). Every function copes with runs that have
no trials, no finished trials, only failures, or no controller updates: it draws what exists and
says in the panel what does not.
"""

from __future__ import annotations

import math
from statistics import mean, median

from ..arch.space import get_space
from ..search.records import Status
from .plots import _pyplot

CURVES = (("top1", "-", "best so far"), ("top5", "--", "top-5 mean"), ("top25", ":", "top-25 mean"))
FAILURE_STYLES = (("failed", "-", "x"), ("diverged", "--", "v"))


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="#6b7280")


def _key(label: str, ls: str = "-", marker: str | None = None, color: str = "#111827", **kw):
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, ls=ls, marker=marker, label=label, **kw)


def _whole(*axes_xy) -> None:
    """Integer ticks on axes that count things (children, updates): never 2.5 children."""
    from matplotlib.ticker import MaxNLocator

    for axis in axes_xy:
        axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))


TRAIN_CHILD = "nasnet.search.children.train:train_child"


def reward_label(runs) -> str:
    """What the reward is: validation accuracy for the training child without a cost term, else the
    child's own reward (the analytic child's similarity, or accuracy x cost factor)."""
    configs = [r.config or {} for r in runs]
    accuracy = configs and all((c.get("child") or {}).get("fn") == TRAIN_CHILD
                               and not (c.get("cost") or {}).get("name") for c in configs)
    return "reward (validation accuracy)" if accuracy else "reward"


def _run_keys(runs) -> list:
    return [_key(r.label, color=f"C{i}", lw=3) for i, r in enumerate(runs)] if len(runs) > 1 else []


def time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, name) that keeps an elapsed-time axis readable."""
    if seconds < 120:
        return 1.0, "seconds"
    if seconds < 3 * 3600:
        return 60.0, "minutes"
    return 3600.0, "hours"


def _elapsed_unit(runs) -> tuple[float, str]:
    spans = [(r.last_activity or 0.0) - r.started_at for r in runs if r.started_at is not None]
    return time_unit(max(spans, default=0.0))


def rewards_figure(runs):
    """Reward of every child against children sampled, with best / top-5 / top-25 so far (Figure 6).

    Failed and diverged children are marked along the bottom edge; they count as sampled.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    one = len(runs) == 1
    any_reward = False
    for i, r in enumerate(runs):
        c = f"C{i}"
        done = [t for t in r.trials if t.status == Status.DONE and t.reward is not None]
        if done:
            any_reward = True
            ax.scatter([t.id for t in done], [t.reward for t in done], s=9, color=c, alpha=0.35, lw=0,
                       zorder=2)
        for key, ls, _ in CURVES:
            pts = [(p["children"], p[key]) for p in r.curves if p[key] is not None]
            if pts:
                ax.plot(*zip(*pts), color=c, ls=ls, lw=1.8, zorder=3, drawstyle="steps-post")
        for status, _, marker in FAILURE_STYLES:
            xs = [t.id for t in r.trials if t.status == status]
            if xs:
                ax.plot(xs, [0.03 + 0.04 * i] * len(xs), ls="", marker=marker, ms=5, color=c,
                        transform=ax.get_xaxis_transform(), zorder=4, clip_on=False)
    if not any(r.trials for r in runs):
        _note(ax, "no trials yet")
    elif not any_reward:
        _note(ax, "no child has finished successfully yet")
    ax.set_xlabel("children sampled")
    ax.set_ylabel(reward_label(runs))
    _whole(ax.xaxis)
    ax.set_title("reward against children sampled (Figure 6 view)")
    ax.grid(True, alpha=0.3)
    keys = _run_keys(runs)
    keys += [_key(label, ls, color="C0" if one else "#111827") for _, ls, label in CURVES]
    keys += [_key("one child", "", "o", color="C0" if one else "#111827", alpha=0.5, ms=4)]
    keys += [_key(s, "", m, color="C0" if one else "#111827") for s, _, m in FAILURE_STYLES]
    ax.legend(handles=keys, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _uniform_entropy(space_name: str) -> float | None:
    try:
        return sum(math.log(n) for n in get_space(space_name).decision_sizes())
    except Exception:   # noqa: BLE001 - an unknown space in a foreign config: no reference line
        return None


def entropy_figure(runs):
    """The controller over its updates: policy entropy (top left), minibatch reward and baseline (top
    right), KL divergence from the policy before each update to the one after (bottom left) and PPO's
    clipped fraction (bottom right).

    The entropy is that of the policy each architecture was sampled from (summed over its 2 x 5B
    softmaxes, in nats), averaged over the architectures sampled between two updates, drawn from 0 to
    the uniform policy's entropy (the grey line, where random search stays; the right axis gives
    the share of it), so a short run's drift reads as the small thing it is.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (ax, ax2), (ax3, ax4) = axes
    spaces, lasts = {}, []
    for i, r in enumerate(runs):
        last = _controller_curves(axes, r, f"C{i}")
        if last is not None:
            lasts.append(last)
        space = (r.config or {}).get("space")
        if space:
            spaces.setdefault(space, _uniform_entropy(space))
    _uniform_reference(ax, spaces, lasts[0] if len(runs) == 1 and lasts else None)
    _controller_notes(axes, runs)
    _controller_labels(axes, runs)
    # below the panels, not in the entropy panel: run names as long as `nasnet compare` writes them would
    # cover the curves (where a collapse shows) and the right axis
    keys = _run_keys(runs) + ax.get_legend_handles_labels()[0]
    ax2.legend(handles=[_key("mean reward", "-", "o", ms=3), _key("baseline (moving average)", "--")],
               fontsize=8, loc="best")
    if keys:
        ncol = min(3, len(keys))
        fig.legend(handles=keys, fontsize=8, loc="lower center", ncol=ncol, frameon=False)
        fig.tight_layout(rect=(0, 0.015 + 0.028 * math.ceil(len(keys) / ncol), 1, 1))
    else:
        fig.tight_layout()
    return fig


def _controller_curves(axes, run, color: str) -> float | None:
    """One run's curves on the four panels of `entropy_figure`; returns its last mean entropy (None without)."""
    (ax, ax2), (ax3, ax4) = axes
    by_version: dict[int, list[float]] = {}
    for t in run.trials:
        if t.entropy is not None and t.policy_version is not None:
            by_version.setdefault(t.policy_version, []).append(t.entropy)
    last = None
    if by_version:
        xs = sorted(by_version)
        ax.plot(xs, [mean(by_version[v]) for v in xs], color=color, marker="o", ms=3, lw=1.5)
        last = mean(by_version[xs[-1]])
    ups = [u for u in run.updates if u["mean_reward"] is not None]
    if ups:
        xs = [u["version"] for u in ups]
        ax2.plot(xs, [u["mean_reward"] for u in ups], color=color, marker="o", ms=3, lw=1.5)
        ax2.plot(xs, [u["baseline"] for u in ups], color=color, ls="--", lw=1.2)
    for a, key in ((ax3, "kl"), (ax4, "clip_fraction")):
        pts = [(u["version"], u[key]) for u in run.updates if u.get(key) is not None]
        if pts:
            a.plot(*zip(*pts), color=color, marker="o", ms=3, lw=1.5)
    return last


def _uniform_reference(ax, spaces: dict[str, float | None], last: float | None) -> None:
    """The uniform policy's entropy of each space on the entropy panel, the y-axis from 0 to it, and with
    one space its share on the right axis (and a single run's `last` entropy as a share of it)."""
    uniform = [h for h in spaces.values() if h is not None]
    for space, h in spaces.items():
        if h is not None:
            ax.axhline(h, color="#9ca3af", ls=":", lw=1.2,
                       label=f"uniform policy{f' ({space})' if len(spaces) > 1 else ''}: {h:.1f} nats")
    if not uniform:
        return
    # the whole range a policy's entropy can take, 0 to the uniform policy's: a drift of a few
    # hundredths of a nat over a short run is noise beside it, and a collapse is plain to see
    top = max(uniform + [y for line in ax.get_lines() for y in line.get_ydata()])
    ax.set_ylim(0, top * 1.06)
    if len(uniform) == 1:
        u = uniform[0]
        share = ax.secondary_yaxis("right", functions=(lambda h: 100 * h / u, lambda p: p * u / 100))
        share.set_ylabel("% of the uniform policy's entropy")
        if last is not None:
            ax.plot([], [], ls="", label=f"last: {last:.2f} nats ({100 * last / u:.1f}% of uniform)")


def _controller_notes(axes, runs) -> None:
    """Say on each panel of `entropy_figure` what it lacks; KL on a log scale when it has both panels' data."""
    (ax, ax2), (ax3, ax4) = axes
    if not any(r.trials for r in runs):
        _note(ax, "no trials yet")
    if not any(r.updates for r in runs):
        _note(ax2, "no controller update yet")
    if not any(u.get("kl") is not None for r in runs for u in r.updates):
        _note(ax3, "no policy update recorded (random search, evolution, or none yet)")
    if not any(u.get("clip_fraction") is not None for r in runs for u in r.updates):
        _note(ax4, "no PPO update recorded")
    elif any(u.get("kl") for r in runs for u in r.updates):
        ax3.set_yscale("log")


def _controller_labels(axes, runs) -> None:
    """Titles, axis labels and grids of `entropy_figure`'s four panels."""
    (ax, ax2), (ax3, ax4) = axes
    ax3.set_xlabel("controller update")
    ax3.set_ylabel("KL(before || after), nats")
    ax3.set_title("how far each update moved the policy")
    ax4.set_xlabel("controller update")
    ax4.set_ylabel("share of ratios outside 1 +- clip")
    ax4.set_ylim(-0.03, 1.03)
    ax4.set_title("PPO: clipped fraction")
    ax.set_xlabel("controller updates before sampling (policy version)")
    ax.set_ylabel("policy entropy (nats, summed over decisions)")
    ax.set_title("policy entropy over controller updates")
    ax2.set_xlabel("controller update")
    ax2.set_ylabel(reward_label(runs))
    ax2.set_title("minibatch mean reward and baseline")
    _whole(ax.xaxis, ax2.xaxis, ax3.xaxis, ax4.xaxis)
    for a in (ax, ax2, ax3, ax4):
        a.grid(True, alpha=0.3)


def failures_figure(runs):
    """Failed and diverged children: cumulative over time (left), share per controller minibatch (right)."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    scale, unit = _elapsed_unit(runs)
    total = 0
    for i, r in enumerate(runs):
        done = r.finished()
        if not done:
            continue
        t0 = r.started_at
        for status, ls, _ in FAILURE_STYLES:
            times = [(t.finished_at - t0) / scale for t in done if t.status == status and t.finished_at]
            total += len(times)
            xs = [0.0] + times + [((r.last_activity or t0) - t0) / scale]
            ys = [0] + list(range(1, len(times) + 1)) + [len(times)]
            ax.plot(xs, ys, color=f"C{i}", ls=ls, lw=1.6, drawstyle="steps-post")
        retries = sorted((t.finished_at - t0) / scale for t in done if t.finished_at
                         for _ in range(max(0, (t.attempts or 0) - 1)))
        if retries:
            ax.plot([0.0] + retries, range(len(retries) + 1), color=f"C{i}", ls=":", lw=1.2,
                    drawstyle="steps-post")
        width = int((r.config or {}).get("strategy", {}).get("batch_size") or 20)
        xs, ys = [], []
        for start in range(0, len(done), width):
            chunk = done[start:start + width]
            xs.append(start + len(chunk))
            ys.append(sum(t.status != Status.DONE for t in chunk) / len(chunk))
        ax2.plot(xs, ys, color=f"C{i}", marker="o", ms=3, lw=1.5)
    if not any(r.finished() for r in runs):
        _note(ax, "no child has finished yet")
        _note(ax2, "no child has finished yet")
    elif total == 0:
        # counts start at 0 at the bottom of the panel, so the note sits above the flat line
        _note(ax, "no failed or diverged children")
    top = max(1, ax.get_ylim()[1])
    ax.set_ylim(-0.02 * top, top)
    ax.set_xlabel(f"time since the run started ({unit})")
    ax.set_ylabel("children (cumulative)")
    _whole(ax.yaxis, ax2.xaxis)
    ax.set_title("failed and diverged children over time")
    ax2.set_xlabel("children finished (in the order results arrived)")
    ax2.set_ylabel("share failed or diverged")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_title("failures per controller minibatch")
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
    keys = _run_keys(runs) + [_key(s, ls) for s, ls, _ in FAILURE_STYLES] + [_key("retried attempts", ":")]
    ax.legend(handles=keys, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def binned_medians(xs: list[float], ys: list[float], size: int) -> tuple[list[float], list[float]]:
    """The median of ys over consecutive bins of `size` points, placed at the bins' mean x."""
    out_x, out_y = [], []
    for start in range(0, len(xs), size):
        out_x.append(mean(xs[start:start + size]))
        out_y.append(median(ys[start:start + size]))
    return out_x, out_y


def throughput_figure(runs):
    """Time per child (left) and children per hour (right), from the trials' start and finish times.

    Results reused for an architecture sampled again (cached) take no time and are left out of the
    time per child; they count as finished children in the rate.
    """
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    scale, unit = _elapsed_unit(runs)
    markers = {Status.DONE: "o", Status.FAILED: "x", Status.DIVERGED: "v"}
    for i, r in enumerate(runs):
        c = f"C{i}"
        done = r.finished()
        timed = [(k, t) for k, t in enumerate(done, start=1) if t.seconds is not None]
        for status, m in markers.items():
            pts = [(k, t.seconds) for k, t in timed if t.status == status]
            if pts:
                ax.scatter(*zip(*pts), s=10, marker=m, color=c, alpha=0.45, lw=1 if m == "x" else 0)
        if timed:
            size = max(5, len(timed) // 40)
            ax.plot(*binned_medians([k for k, _ in timed], [t.seconds for _, t in timed], size), color=c, lw=1.8)
        stamps = sorted(t.finished_at for t in done if t.finished_at)
        if len(stamps) >= 2:
            t0 = r.started_at
            window = int((r.config or {}).get("strategy", {}).get("batch_size") or 20)
            first = min(5, len(stamps))        # the rate over the first child or two says little
            cum = [((s - t0) / scale, 3600 * k / (s - t0)) for k, s in enumerate(stamps, start=1)
                   if k >= first and s > t0]
            win = [((stamps[k] - t0) / scale, 3600 * window / (stamps[k] - stamps[k - window]))
                   for k in range(window, len(stamps)) if stamps[k] > stamps[k - window]]
            if cum:
                ax2.plot(*zip(*cum), color=c, ls="--", lw=1.3)
            if win:
                ax2.plot(*zip(*win), color=c, lw=1.6)
    if not any(r.finished() for r in runs):
        _note(ax, "no child has finished yet")
        _note(ax2, "no child has finished yet")
    ax.set_xlabel("children finished (in the order results arrived)")
    ax.set_ylabel("seconds per child (start to result)")
    _whole(ax.xaxis)
    ax.set_title("time per child")
    ax2.set_xlabel(f"time since the run started ({unit})")
    ax2.set_ylabel("children per hour")
    ax2.set_title("children per hour")
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
    ax.legend(handles=_run_keys(runs) + [_key(s, "", m, alpha=0.6) for s, m in markers.items()]
              + [_key("median per bin of children", "-")], fontsize=8, loc="best")
    ax2.legend(handles=[_key("over the last minibatch", "-"), _key("since the start", "--")], fontsize=8,
               loc="best")
    fig.tight_layout()
    return fig


def cost_figure(runs):
    """Accuracy against cost (MnasNet's objective): every successful child, the accuracy-cost front
    (no other child is both as accurate and as cheap), and each run's cost target."""
    from ..search.objective import pareto_front

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5))
    names = set()
    for i, r in enumerate(runs):
        if not r.cost:
            continue
        names.add(r.cost["name"])
        done = [t for t in r.trials
                if t.status == Status.DONE and t.cached_from is None and t.cost and t.accuracy is not None]
        if done:
            ax.scatter([t.cost for t in done], [t.accuracy for t in done], s=10, color=f"C{i}", alpha=0.35, lw=0)
            front = pareto_front((t.id, t.accuracy, t.cost) for t in done)
            ax.plot([c for _, _, c in front], [a for _, a, _ in front], color=f"C{i}", lw=1.8, marker="o", ms=4,
                    drawstyle="steps-post")
        ax.axvline(r.cost["target"], color=f"C{i}", ls=":", lw=1.2)
    if not any(t.cost for r in runs for t in r.trials):
        _note(ax, "no child has reported its cost yet")
    else:
        ax.set_xscale("log")
    ax.set_xlabel(" / ".join(sorted(names)) or "cost")
    ax.set_ylabel("accuracy (the child's own reward)")
    ax.set_title("accuracy against cost: children, the front, the target")
    ax.grid(True, which="both", alpha=0.3)
    keys = _run_keys(runs) + [_key("one child", "", "o", alpha=0.5, ms=4), _key("accuracy-cost front", "-", "o", ms=4),
                              _key("cost target", ":")]
    ax.legend(handles=keys, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def rungs_figure(runs):
    """ASHA: every rung result against the epochs trained, each trial's rungs joined by a line (left);
    results per rung (right)."""
    plt = _pyplot()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4))
    for i, r in enumerate(runs):
        by_trial: dict[int, list] = {}
        for g in r.rungs:
            if g.status == Status.DONE and g.reward is not None:
                by_trial.setdefault(g.trial_id, []).append((g.epochs, g.reward))
        for pts in by_trial.values():
            pts.sort()
            ax.plot(*zip(*pts), color=f"C{i}", lw=0.8, alpha=0.5, marker="o", ms=3)
        rungs = r.asha_rungs
        counts = [sum(g.rung == k and g.status == Status.DONE for g in r.rungs) for k in range(len(rungs))]
        if rungs:
            ax2.bar([k + 0.8 * i / max(1, len(runs)) for k in range(len(rungs))], counts, width=0.8 / max(1, len(runs)),
                    color=f"C{i}", align="edge")
            ax2.set_xticks(range(len(rungs)), [f"rung {k}\n{e} epochs" for k, e in enumerate(rungs)])
    if not any(g.status == Status.DONE for r in runs for g in r.rungs):
        _note(ax, "no rung result yet")
    ax.set_xscale("log")
    ax.set_xlabel("epochs trained (log)")
    ax.set_ylabel("reward")
    ax.set_title("each trial's results rung by rung")
    ax2.set_ylabel("successful results")
    ax2.set_title("results per rung (the top 1/eta go on)")
    for a in (ax, ax2):
        a.grid(True, alpha=0.3)
    if len(runs) > 1:
        ax.legend(handles=_run_keys(runs), fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _any_cost(runs) -> bool:
    return any(r.cost for r in runs)


def _any_asha(runs) -> bool:
    return any(r.asha_rungs for r in runs)


# (file stem, title, figure, when): `when(runs)` False leaves the figure out (None: always drawn).
FIGURES = (
    ("rewards", "Reward against children sampled", rewards_figure, None),
    ("entropy", "The controller over its updates", entropy_figure, None),
    ("failures", "Failures and divergences", failures_figure, None),
    ("throughput", "Time per child and children per hour", throughput_figure, None),
    ("cost", "Accuracy against cost", cost_figure, _any_cost),
    ("rungs", "ASHA: results rung by rung", rungs_figure, _any_asha),
)
