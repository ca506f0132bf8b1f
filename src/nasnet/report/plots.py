"""Matplotlib figures for the command line and the run report (paper Figures 5 and 6).

Every function returns a Figure (Agg backend, no display needed); callers save it. Importing this
module does not import matplotlib: each function does, so `nasnet --help` stays fast.
"""

from __future__ import annotations


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def zoo_figure(rows: list[dict]):
    """The zoo on the paper's Figure 5 axes: ImageNet top-1 against mult-adds and against parameters.

    `rows` are `nasnet zoo --json` objects. Only models with a paper top-1 appear (the ImageNet
    NASNet-A sizes). Each model is drawn twice on each panel, at the paper's count (hollow) and at
    this implementation's count (filled), joined by a line; the accuracy is the paper's in both.
    """
    plt = _pyplot()
    rows = [r for r in rows if r.get("paper_top1") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    panels = (("mult_adds", "paper_mult_adds", "mult-adds (millions)"), ("params", "paper_params",
                                                                        "parameters (millions)"))
    for ax, (ours_key, paper_key, xlabel) in zip(axes, panels):
        for i, r in enumerate(rows):
            colour = f"C{i}"
            y = r["paper_top1"]
            ours = r[ours_key] / 1e6
            paper = r[paper_key] / 1e6 if r.get(paper_key) else None
            if paper is not None:
                ax.plot([paper, ours], [y, y], color=colour, lw=1, alpha=0.6)
                ax.scatter([paper], [y], facecolors="none", edgecolors=colour, s=60, zorder=3)
            ax.scatter([ours], [y], color=colour, s=40, zorder=4, label=f"{r['name']} ({r['n_at_f']})")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ImageNet top-1 (%), as reported in the paper")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title("accuracy vs mult-adds (Figure 5, left)")
    axes[1].set_title("accuracy vs parameters (Figure 5, right)")
    handles, labels = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], marker="o", ls="", mfc="none", mec="k", label="paper's count"),
                Line2D([], [], marker="o", ls="", color="k", label="this implementation's count")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig
