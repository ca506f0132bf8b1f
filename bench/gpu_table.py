"""What the GPU suite (bench/gpu_suite.py) says about itself: its plan, the optional packages it
found, the verdict and targets as measured, and the table on stdout."""

from __future__ import annotations

import importlib
import math


WHAT = {"peak": "bf16 matrix-multiply rate (the peak the shares divide by)",
        "correctness": "ops, cells, networks, bf16 steps, augmentation: device vs CPU",
        "torchrun": "one-process torchrun: DDP, NCCL, SyncBatchNorm (subprocess)",
        "search": "nasnet search end to end, children sharing the GPU (subprocess per executor)",
        "child_cost": "the paper's child, eager fp32 and bf16 + channels_last",
        "packing": "1, 2, 4, 8 children at once on the GPU (process executor)",
        "model_speed": "mobile, large, timm's large: training and inference, bf16 and fp32, eager",
        "compiled": "compiled child variants and model rows (subprocess)"}
OPTIONAL = {"ray": "the search check with the Ray executor", "timm": "timm's nasnetalarge rows",
            "matplotlib": "nothing here (nasnet report)", "h5py": "nothing here (Keras weights)",
            "safetensors": "nothing here (safetensors weights)", "onnx": "nothing here (nasnet export --format onnx)"}


def optional_packages() -> dict:
    """Each optional package's version, or why it cannot be imported, and what the suite uses it for."""
    out = {}
    for name, use in OPTIONAL.items():
        try:
            module = importlib.import_module(name)
            out[name] = {"version": str(getattr(module, "__version__", "?")), "used_for": use}
        except Exception as err:  # noqa: BLE001 - missing or broken: recorded, never fatal
            out[name] = {"missing": f"{type(err).__name__}: {err}"[:200], "used_for": use}
    return out


def plan_rows(sizes: dict, groups: list[str], budget_s: float) -> list[dict]:
    """The parts that will run, in order, each with the most it may take (its share of the plan,
    scaled so that the selected parts share `budget_s`) and when it must end at the latest."""
    caps = {name: cap for name, cap in sizes["plan"].items() if name in groups}
    scale = budget_s / sum(caps.values())
    rows, at = [], 0.0
    for name, cap in caps.items():
        at += cap * scale
        rows.append({"part": name, "what": WHAT[name], "at_most_s": round(cap * scale, 1), "ends_by_s": round(at, 1)})
    return rows


def print_plan(sizes: dict, groups: list[str], budget_s: float) -> None:
    print(f"budget {budget_s:.0f} s, then the watchdog stops the run after {sizes['grace_s']} s more "
          f"(at most {budget_s + sizes['grace_s']:.0f} s, start-up not counted)")
    print(f"{'part':<12} {'at most':>8} {'ends by':>8}  what")
    for r in plan_rows(sizes, groups, budget_s):
        print(f"{r['part']:<12} {r['at_most_s']:>7.0f}s {r['ends_by_s']:>7.0f}s  {r['what']}")
    print("a part may also use what earlier parts left; subprocess timeouts are what their part has left"
          + ("; here the subprocess parts run beside the others" if sizes.get("overlap") else ""))


def summarize(report: dict, seconds: float) -> None:
    """The verdict of what has run so far, into `report`: failed checks, errors of parts and of rows,
    skips with their reasons, the targets as measured; `passed` stays None while the run is going."""
    parts = report["parts"]
    checks = []
    for name in ("ops", "cells", "models", "bf16_step", "augmentation", "torchrun", "search"):
        part = parts.get(name) or {}
        checks += [{"name": name, **c} for c in part.get("checks", [part] if part else [])]
    failed = [c["name"] for c in checks if c.get("passed") is False or isinstance(c.get("error"), str)]
    rows = [(name, r) for name in ("child_cost", "packing", "model_speed", "compiled")
            for r in (parts.get(name) or {}).get("rows", [])]
    report["checks_failed"] = failed
    report["row_errors"] = [f"{name} {_row_name(r)}: {r['error']}"[:300] for name, r in rows
                            if isinstance(r.get("error"), str)]
    report["skipped"] = [f"{c['name']}: {c['skipped']}" for c in checks if c.get("skipped")]
    report["skipped"] += [f"{name} {_row_name(r)}: {r['skipped']}" for name, r in rows if r.get("skipped")]
    report["skipped"] += [f"compiled {plan_name(r)}: {r['skipped']}"
                          for r in (parts.get("compiled") or {}).get("skipped", [])]
    report["targets"] = targets(parts, report["mode"])
    ok = not failed and not report["errors"] and not report["row_errors"]
    report["passed"] = None if report["state"] == "running" else ok and report["state"] == "finished"
    report["parts_done"] = list(parts)
    report["seconds"] = seconds


def _row_name(r: dict) -> str:
    if "children" in r:
        return f"{r['children']} at once"
    return r.get("variant") or f"{r.get('model')} {r.get('mode')} {r.get('precision')}" + (
        " compiled" if r.get("compiled") else "")


def plan_name(p: dict) -> str:
    return p.get("variant") or f"{p.get('model')} {p.get('mode')} {p.get('precision')}"


def targets(parts: dict, mode: str) -> dict:
    """The issue's three targets, as measured (None where the rows are missing)."""
    import gpu_speed

    packing = parts.get("packing", {}).get("best") or {}
    compiled = parts.get("compiled", {}).get("rows", [])
    speed_rows = parts.get("model_speed", {}).get("rows", []) + [r for r in compiled if r.get("model")]
    summary = gpu_speed.summarize_speed([r for r in speed_rows if "images_per_second" in r])
    best = summary["best"]
    return {
        "shapes": "the paper's child and the zoo models" if mode == "full" else "smoke: tiny shapes, not the targets",
        "child_gpu_seconds_with_packing": packing.get("gpu_seconds_per_child"), "target_child_gpu_seconds": 30,
        "children_per_gpu_hour": packing.get("children_per_hour"), "target_children_per_gpu_hour": 120,
        "large_training_vs_timm_best": best.get("large training: ours / timm, each at its best"),
        "target_training_vs_timm": 1.5,
        "large_inference_vs_timm_best": best.get("large inference: ours / timm, each at its best"),
        "target_inference_vs_timm": 1.0,
        "packing_gain": packing.get("gain_vs_one"),
        "idle_share_of_one_child": parts.get("packing", {}).get("idle_share_of_one_child"),
        "model_speed_summary": summary,
    }


def _fmt(v, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def _not_measured(row: dict) -> str:
    return f"skipped: {row['skipped']}"[:80] if row.get("skipped") else f"ERROR {row.get('error', '?')}"[:80]


def _check_rows(parts: dict) -> list[tuple[str, str, str, str, str]]:
    """The bf16 peak, and every correctness check (and the search's) with its error, tolerance and verdict."""
    rows: list[tuple[str, str, str, str, str]] = []
    peak = parts.get("peak", {})
    if "bf16_matmul_tflops" in peak:
        rows.append(("peak", f"bf16 matmul {peak['n']}^3", f"{peak['bf16_matmul_tflops']:.3g} TFLOP/s", "-",
                     "the shares of peak below divide by this"))

    def check(part, c):
        if c.get("skipped"):
            rows.append((part, c["name"], "-", "-", "skipped: " + c["skipped"]))
        elif "error" in c and not isinstance(c["error"], (int, float)):
            rows.append((part, c.get("name", part), "-", "-", "ERROR " + str(c["error"])[:60]))
        else:
            tol = c.get("tolerance")
            verdict = "ok" if c.get("passed") else "FAIL"
            rows.append((part, c["name"], _fmt(c.get("error")), "-" if tol is None else f"<= {tol:g}",
                         verdict + (f"  {c['summary']}" if c.get("summary") else "")))

    for name in ("ops", "bf16_step", "augmentation", "torchrun"):
        if "name" in parts.get(name, {}):
            check("correct" if name != "torchrun" else "torchrun", parts[name])
        elif parts.get(name):
            rows.append((name, name, "-", "-", "ERROR " + parts[name].get("error", "?")[:60]))
    for name in ("cells", "models", "search"):
        for c in parts.get(name, {}).get("checks", []):
            check("search" if name == "search" else "correct", c)
        if "error" in parts.get(name, {}):
            rows.append((name, name, "-", "-", "ERROR " + parts[name]["error"][:60]))
    return rows


def _throughput_rows(parts: dict) -> list[tuple[str, str, str, str, str]]:
    """The child's training throughput per variant (ratios to the first measured), and children packed on one GPU."""
    rows = []
    child = parts.get("child_cost", {}).get("rows", []) + [
        r for r in parts.get("compiled", {}).get("rows", []) if r.get("variant")]
    base = next((r["images_per_second"] for r in child if "images_per_second" in r), None)
    for r in child:
        if "images_per_second" not in r:
            rows.append(("child", r["variant"], "-", "-", _not_measured(r)))
            continue
        extra = f"20-ep child {r['child_seconds_paper']:.0f} s; {_fmt(r.get('share_of_bf16_peak'), '.1%')} of bf16 peak"
        if "compile_seconds" in r:
            extra += f"; compile {r['compile_seconds']:.0f} s"
        rows.append(("child", f"{r['variant']} (batch {r['batch']})", f"{r['images_per_second']:,.0f} img/s",
                     f"x{r['images_per_second'] / base:.2f}", extra))
    for r in parts.get("packing", {}).get("rows", []):
        if "images_per_second" in r:
            rows.append(("packing", f"{r['children']} at once", f"{r['images_per_second']:,.0f} img/s",
                         f"x{_fmt(r['gain_vs_one'], '.2f')}",
                         f"{_fmt(r['children_per_hour'])} children/GPU-h, {_fmt(r['gpu_seconds_per_child'])} s each"))
        else:
            rows.append(("packing", f"{r['children']} at once", "-", "-", _not_measured(r)))
    return rows


def _speed_rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """The models' speed per mode and precision, the compiled rows skipped, the best ratios of the targets."""
    parts = report["parts"]
    rows = []
    speed = parts.get("model_speed", {}).get("rows", []) + [
        r for r in parts.get("compiled", {}).get("rows", []) if r.get("model")]
    for r in speed:
        what = f"{r['model']} {r['mode']} {r['precision']}{' compiled' if r.get('compiled') else ''}"
        if "images_per_second" in r:
            extra = f"batch {r['batch']} @ {r['image_size']}px" + (
                f"; compile {r['compile_seconds']:.0f} s" if "compile_seconds" in r else "")
            rows.append(("speed", what, f"{r['images_per_second']:,.1f} img/s", "-", extra))
        else:
            rows.append(("speed", what, "-", "-", _not_measured(r)))
    for r in parts.get("compiled", {}).get("skipped", []):
        rows.append(("compiled", plan_name(r), "-", "-", "skipped: " + r["skipped"]))
    for item, ratio in (report.get("targets", {}).get("model_speed_summary", {}).get("best", {})).items():
        if isinstance(ratio, float):
            rows.append(("speed", item, f"x{ratio:.2f}", "-", ""))
    return rows


def print_table(report: dict) -> None:
    """The report as one table: part, item, value, ratio or tolerance, note."""
    parts = report["parts"]
    rows = _check_rows(parts) + _throughput_rows(parts) + _speed_rows(report)
    widths = [max(len(r[i]) for r in rows + [("part", "item", "value", "vs", "")]) for i in range(4)]
    print()
    for r in [("part", "item", "value", "vs / tol", "")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[4])
