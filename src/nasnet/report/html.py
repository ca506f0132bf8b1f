"""The report page: one self-contained HTML file (inline CSS, inline JS, images as data URIs).

It needs no network and no other file: the PNG plots and the SVG cell drawings are embedded, the
trials table is plain HTML (readable without JS) that a few lines of inline JS sort by a header
click and filter by text. While `nasnet report --watch` runs, a refresh meta tag reloads the page;
the table's sort and filter survive the reload (sessionStorage).
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass

from ..text import plural
from .data import RunData


@dataclass
class Image:
    key: str
    title: str
    mime: str           # image/png | image/svg+xml
    data: bytes
    file: str           # the file written next to report.html
    caption: str = ""
    text: str = ""      # shown under the image (a genotype's text form)


def _esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _uri(img: Image) -> str:
    return f"data:{img.mime};base64,{base64.b64encode(img.data).decode('ascii')}"


def fmt_reward(x) -> str:
    return "" if x is None else f"{x:.4f}"


def fmt_seconds(s) -> str:
    if s is None:
        return ""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 3 * 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


def fmt_count(n) -> str:
    if n is None:
        return ""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)


def _time(t) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


CSS = """
:root { --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; --head:#f9fafb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1280px; }
h1 { font-size: 1.5rem; margin: .2rem 0; } h2 { font-size: 1.2rem; margin: 2rem 0 .6rem;
     border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.muted { color: var(--muted); } nav a { margin-right: 1rem; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: var(--head); }
#trials th { position: sticky; top: 0; z-index: 1; }
.scroll-x { overflow-x: auto; max-width: 100%; }
table.summary { width: 100%; }
table.summary td { white-space: nowrap; } table.summary td.t { white-space: normal; min-width: 5.5rem; }
table.summary td.w { white-space: normal; overflow-wrap: anywhere; min-width: 8rem; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
.cells { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
code.geno { display: block; font-size: 11px; word-break: break-all; background: var(--head); padding: .3rem; }
#trials th { cursor: pointer; user-select: none; }
#trials th[aria-sort="ascending"]::after { content: " \\25B2"; }
#trials th[aria-sort="descending"]::after { content: " \\25BC"; }
#trials td.g { max-width: 13rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
               font-family: ui-monospace, monospace; font-size: 11px; }
#trials td.g:hover { white-space: normal; word-break: break-all; }
.controls button { margin-right: .3rem; }
#trials td.r { white-space: nowrap; }
#trials td.e { max-width: 12rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tablewrap { max-height: 70vh; overflow: auto; border: 1px solid var(--line); }
tr.failed td { background: #fef2f2; } tr.diverged td { background: #fff7ed; }
tr.running td { background: #eff6ff; } tr.queued td { color: var(--muted); }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: 12px; background: var(--head);
         border: 1px solid var(--line); }
.badge.live { background: #dbeafe; border-color: #93c5fd; }
pre { background: var(--head); padding: .6rem; overflow: auto; font-size: 12px; }
#filter { padding: .25rem .4rem; width: 22rem; max-width: 100%; margin: 0 .5rem .5rem 0; }
"""

# Sorting keeps rows with no value last in either direction and breaks ties by the original order.
# The table holds every trial; the script shows one page of them (data-page rows) at a time, so a
# paper-sized search (20,000 trials) stays responsive: hidden rows cost the browser no layout.
JS = """
(function () {
  var table = document.getElementById('trials');
  if (!table) return;
  var tbody = table.tBodies[0], heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filter = document.getElementById('filter'), shown = document.getElementById('shown');
  var prev = document.getElementById('prev'), next = document.getElementById('next');
  var pageSize = parseInt(table.dataset.page, 10) || 500, first = 0;
  var storeKey = 'nasnet-report:' + document.body.dataset.runs;
  var rows = Array.prototype.slice.call(tbody.rows), match = rows.map(function () { return true; });
  rows.forEach(function (r, i) { r.dataset.i = i; });
  function value(row, i, numeric) {
    var cell = row.cells[i], v = cell.hasAttribute('data-v') ? cell.getAttribute('data-v') : cell.textContent;
    if (v === '') return null;
    if (numeric) { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return v.toLowerCase();
  }
  function save(state) { try { sessionStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) {} }
  function load() { try { return JSON.parse(sessionStorage.getItem(storeKey) || '{}'); } catch (e) { return {}; } }
  var state = load();
  function show() {
    var total = 0;
    for (var k = 0; k < rows.length; k++) if (match[rows[k].dataset.i]) total++;
    if (first >= total) first = Math.max(0, total - pageSize);
    first -= first % pageSize;
    var seen = 0;
    rows.forEach(function (r) {
      var visible = false;
      if (match[r.dataset.i]) { visible = seen >= first && seen < first + pageSize; seen++; }
      if (r.hidden === visible) r.hidden = !visible;
    });
    var paged = total > pageSize;
    prev.hidden = next.hidden = !paged;
    prev.disabled = first === 0; next.disabled = first + pageSize >= total;
    shown.textContent = paged
      ? 'trials ' + (first + 1) + '-' + Math.min(total, first + pageSize) + ' of ' + total + ' shown'
        + (total < rows.length ? ' (' + rows.length + ' in all)' : '')
      : total + ' of ' + rows.length + (rows.length === 1 ? ' trial' : ' trials') + ' shown';
  }
  function sortBy(i, dir) {
    var numeric = heads[i].dataset.type === 'num';
    var keyed = rows.map(function (r) { return [value(r, i, numeric), +r.dataset.i, r]; });
    keyed.sort(function (a, b) {
      var x = a[0], y = b[0];
      if (x === null || y === null) {
        if (x === y) return a[1] - b[1];
        return x === null ? 1 : -1;
      }
      if (x < y) return -dir;
      if (x > y) return dir;
      return a[1] - b[1];
    });
    rows = keyed.map(function (k) { return k[2]; });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    tbody.appendChild(frag);
    heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
    heads[i].setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    state.sort = [i, dir]; save(state);
    first = 0; show();
  }
  function applyFilter() {
    var q = filter.value.trim().toLowerCase();
    rows.forEach(function (r) { match[r.dataset.i] = q === '' || r.textContent.toLowerCase().indexOf(q) >= 0; });
    state.filter = filter.value; save(state);
    first = 0; show();
  }
  heads.forEach(function (h, i) {
    h.tabIndex = 0;
    var flip = function () { sortBy(i, h.getAttribute('aria-sort') === 'ascending' ? -1 : 1); };
    h.addEventListener('click', flip);
    h.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); flip(); }
    });
  });
  filter.addEventListener('input', applyFilter);
  prev.addEventListener('click', function () { first = Math.max(0, first - pageSize); show(); });
  next.addEventListener('click', function () { first += pageSize; show(); });
  if (state.filter) filter.value = state.filter;
  applyFilter();
  if (state.sort && heads[state.sort[0]]) sortBy(state.sort[0], state.sort[1]);
})();
"""


def _state(run: RunData) -> tuple[str, bool]:
    c = run.counts()
    finished = c["done"] + c["failed"] + c["diverged"]
    if not run.trials:
        return "no trials yet", True
    if run.complete:
        return "complete", False
    budget = f" of {run.budget}" if run.budget else ""
    return f"in progress or stopped: {finished}{budget} finished", True


def summary_table(runs: list[RunData]) -> str:
    head = ["run", "strategy", "space", "state", "done", "failed", "diverged", "queued / running", "best reward",
            "best trial", "updates", "started", "last activity", "children / h"]
    rows = []
    for r in runs:
        c = r.counts()
        top = r.top(1)
        best = r.best if r.best and r.best.get("stage") == "final" else None
        if best:
            best_reward = fmt_reward(best["reward"]) + " (top-k stage)"
        else:
            best_reward = fmt_reward(top[0].reward) if top else "-"
        best_trial = (best or {}).get("trial") or (top[0].id if top else "-")
        finished = c["done"] + c["failed"] + c["diverged"]
        span = (r.last_activity or 0) - (r.started_at or 0)
        rate = f"{3600 * finished / span:.0f}" if finished and span > 0 else "-"
        state, live = _state(r)
        rows.append(
            f"<tr><td class=w title='{_esc(r.path)}'><b>{_esc(r.label)}</b></td>"
            f"<td>{_esc(r.strategy or '?')}</td><td>{_esc((r.config or {}).get('space', '?'))}</td>"
            f"<td><span class='badge{' live' if live else ''}'>{_esc(state)}</span></td>"
            f"<td class=n>{c['done']}</td><td class=n>{c['failed']}</td><td class=n>{c['diverged']}</td>"
            f"<td class=n>{c['queued']} / {c['running']}</td><td class='n t'>{_esc(best_reward)}</td>"
            f"<td class=n>{_esc(best_trial)}</td><td class=n>{len(r.updates)}</td>"
            f"<td class=t>{_time(r.started_at)}</td><td class=t>{_time(r.last_activity)}</td>"
            f"<td class=n>{rate}</td></tr>")
    ths = "".join(f"<th>{h}</th>" for h in head)
    paths = " &middot; ".join(f"{_esc(r.label)}: <code>{_esc(r.path)}</code>" for r in runs)
    return (f"<div class=scroll-x><table class=summary><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"</table></div><p class=muted>Run directories: {paths}</p>")


NAV = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in (
    ("summary", "summary"), ("plots", "plots"), ("cells", "best cells"), ("trials-section", "trials"),
    ("config", "config")))

TRIAL_COLUMNS = (  # (header, numeric)
    ("trial", True), ("status", False), ("reward", True), ("policy version", True), ("entropy", True),
    ("attempts", True), ("time", True), ("params", True), ("worker", False), ("cached from", True),
    ("error", False), ("genotype", False),
)


def _td(text, value=None, cls: str = "", title: str | None = None) -> str:
    attrs = f" class={cls}" if cls else ""
    if value is not None or cls == "n":
        attrs += f" data-v='{_esc('' if value is None else value)}'"
    if title:
        attrs += f" title='{_esc(title)}'"
    return f"<td{attrs}>{_esc(text)}</td>"


def trials_table(runs: list[RunData], page_size: int = 500) -> str:
    several = len(runs) > 1
    asha = any(r.asha_rungs for r in runs)
    cost = any(r.cost for r in runs)
    extra = [("rung", True), ("epochs", True)] if asha else []
    extra += [("accuracy", True), ("cost", True)] if cost else []
    cols = ([("run", False)] if several else []) + list(TRIAL_COLUMNS[:3]) + extra + list(TRIAL_COLUMNS[3:])
    ths = "".join(f"<th data-type='{'num' if num else 'text'}' scope=col>{_esc(h)}</th>" for h, num in cols)
    out = []
    for r in runs:
        for t in r.trials:
            hidden = " hidden" if len(out) >= page_size else ""     # the script pages through them
            m = t.metrics if isinstance(t.metrics, dict) else {}
            error = (t.error or "").strip()
            first = error.splitlines()[-1] if error else ""
            cells = [_td(r.label, cls="r")] if several else []
            cells += [_td(t.id, t.id, "n"), _td(t.status), _td(fmt_reward(t.reward), t.reward, "n")]
            if asha:
                cells += [_td("" if t.rung is None else t.rung, t.rung, "n"), _td(t.epochs or "", t.epochs, "n")]
            if cost:
                cells += [_td(fmt_reward(t.accuracy), t.accuracy, "n"), _td(fmt_count(t.cost), t.cost, "n")]
            cells += [
                _td(t.policy_version, t.policy_version, "n"),
                _td("" if t.entropy is None else f"{t.entropy:.2f}", t.entropy, "n"),
                _td(t.attempts, t.attempts, "n"), _td(fmt_seconds(t.seconds), t.seconds, "n"),
                _td(fmt_count(m.get("params")), m.get("params"), "n"), _td(t.worker or ""),
                _td(t.cached_from or "", t.cached_from, "n"),
                _td(first[:300], cls="e", title=error[:2000] or None),
                _td(t.genotype, cls="g"),
            ]
            out.append(f"<tr class={_esc(t.status)}{hidden}>{''.join(cells)}</tr>")
    n = sum(len(r.trials) for r in runs)
    return (f"<div class=controls><input id=filter type=search placeholder='filter: a status, a worker, an op, "
            f"an error...' aria-label='filter trials'><button id=prev type=button hidden>&lsaquo; previous</button>"
            f"<button id=next type=button hidden>next &rsaquo;</button> "
            f"<span id=shown class=muted>{plural(n, 'trial')}</span>"
            f"</div><div class=tablewrap><table id=trials data-page={int(page_size)}><thead><tr>{ths}</tr></thead>"
            f"<tbody>{''.join(out)}</tbody></table></div>"
            + (f"<noscript><p>Without JavaScript the table shows the first {page_size} of {n} trials; trials.csv in "
               f"each run directory holds them all.</p></noscript>" if n > page_size else ""))


def finals_table(runs: list[RunData]) -> str:
    rows = []
    for r in runs:
        for f in r.finals:
            error = (f.error or "").strip()
            what = "top-k" if f.repeat == 0 else f"pick, seed {f.repeat + 1}"
            rows.append(
                f"<tr class={_esc(f.status)}><td>{_esc(r.label)}</td><td class=n>{f.trial_id}</td><td>{what}</td>"
                f"<td class=n>{(f.payload or {}).get('seed', '')}</td>"
                f"<td class=n>{fmt_reward(f.search_reward)}</td><td class=n>{_esc(f.epochs or '')}</td>"
                f"<td>{_esc(f.status)}</td><td class=n>{fmt_reward(f.reward)}</td>"
                f"<td>{_esc(f.worker or '')}</td>"
                f"<td title='{_esc(error[:2000])}'>{_esc(error.splitlines()[-1][:200] if error else '')}</td></tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("run", "trial", "retraining", "seed", "search reward", "epochs", "status",
                                            "reward", "worker", "error"))
    picks = "".join(_pick_line(r) for r in runs)
    return (f"<section id=final><h2>Top-k stage</h2><p class=muted>The best architectures of the search "
            f"retrained with fresh seeds and the final budget (the paper's top 250 trained to convergence); "
            f"the pick retrained with further seeds measures it without the luck of its selection.</p>{picks}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _pick_line(run: RunData) -> str:
    pick = (run.best or {}).get("pick")
    if not pick or pick.get("mean") is None:
        return ""
    spread = f" &plusmn; {pick['std']:.4f}" if pick.get("std") is not None else ""
    return (f"<p>{_esc(run.label)}: the pick (trial {_esc(pick['trial'])}) retrained with {len(pick['rewards'])} "
            f"more seed(s): mean reward <b>{pick['mean']:.4f}</b>{spread}.</p>")


def render(runs: list[RunData], plots: list[Image], cells: list[Image], refresh: float | None = None,
           generated: float | None = None, page_size: int = 500) -> str:
    """The whole page as one string."""
    generated = time.time() if generated is None else generated
    names = ", ".join(r.label for r in runs)
    meta = f"<meta http-equiv=refresh content='{max(1, round(refresh))}'>" if refresh else ""
    watching = (f" &middot; <span class='badge live'>watching: this page reloads every {max(1, round(refresh))} s"
                f"</span>") if refresh else ""
    figs = "".join(
        f"<figure id='plot-{_esc(p.key)}'><img src='{_uri(p)}' alt='{_esc(p.title)}'>"
        f"<figcaption>{_esc(p.caption)} <a href='{_esc(p.file)}'>{_esc(p.file)}</a></figcaption></figure>"
        for p in plots)
    if cells:
        drawn = "".join(
            f"<figure><img src='{_uri(c)}' alt='{_esc(c.title)}'><figcaption>{_esc(c.caption)} "
            f"<a href='{_esc(c.file)}'>{_esc(c.file)}</a></figcaption><code class=geno>{_esc(c.text)}</code></figure>"
            for c in cells)
        cell_html = (f"<p class=muted>Drawn like the paper's Figure 4; paste a genotype into "
                     f"<code>nasnet show</code> or <code>nasnet train --genotype</code>.</p>"
                     f"<div class=cells>{drawn}</div>")
    else:
        cell_html = "<p class=muted>No child has finished successfully yet, so there is no best cell to draw.</p>"
    configs = "".join(
        f"<details{' open' if len(runs) == 1 else ''}><summary>{_esc(r.label)}: {_esc(r.path / 'config.json')}"
        f"</summary><pre>{_esc(json.dumps(r.config, indent=2, sort_keys=True)) if r.config else 'not written yet'}"
        f"</pre></details>" for r in runs)
    n_trials = sum(len(r.trials) for r in runs)
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8>{meta}
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=generator content="nasnet report">
<title>nasnet report: {_esc(names)}</title>
<style>{CSS}</style></head>
<body data-runs="{_esc(names)}">
<header><h1>Search report</h1>
<p class=muted>{_esc(names)} &middot; {n_trials} trials &middot; generated {_time(generated)}{watching}</p>
<nav>{NAV}</nav></header>
<section id=summary><h2>Summary</h2>{summary_table(runs)}</section>
<section id=plots><h2>Plots</h2>{figs}</section>
<section id=cells><h2>Best cells</h2>{cell_html}</section>
{finals_table(runs)}
<section id=trials-section><h2>Trials</h2>{trials_table(runs, page_size)}</section>
<section id=config><h2>Resolved config</h2>{configs}</section>
<script>{JS}</script>
</body></html>
"""
