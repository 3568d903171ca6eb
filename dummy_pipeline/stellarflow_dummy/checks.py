"""What each feature must have produced. A check returns a Verdict (ok, reason, note, details).

Checks read the products themselves (HDF5 passed-here records, the Euclid FITS/ECSV/JSON), never
the runner's word for it. ``Expect`` hands out expected values and, for a feature named in
``--break``, a deliberately wrong one: the report must then say FAIL with the reason.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from fake_module.dummy import sha256


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None  # span of the feature's own steps, when known


class Mismatch(Exception):
    """An expectation not met: the message is the FAIL reason."""


class Expect:
    def __init__(self, broken: set[str]) -> None:
        self.broken = broken

    def value(self, feature: str, v: Any) -> Any:
        if feature not in self.broken:
            return v
        if isinstance(v, bool):
            return not v
        if isinstance(v, int | float):
            return v + 1
        if isinstance(v, str):
            return v + "-WRONG"
        if isinstance(v, list | set | tuple):
            return type(v)(list(v) + ["WRONG"])
        return ("WRONG", v)


def equal(what: str, expected: Any, got: Any) -> None:
    if expected != got:
        raise Mismatch(f"{what}: expected {expected!r}, got {got!r}")


def at_least(what: str, minimum: float, got: float) -> None:
    if not got >= minimum:
        raise Mismatch(f"{what}: expected >= {minimum:g}, got {got:g}")


def local_path(f: dict[str, Any] | None, what: str) -> Path:
    if not f:
        raise Mismatch(f"no {what} in the run's outputs")
    loc = f.get("path") or f["location"].removeprefix("file://")
    return Path(loc)


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def records(path: Path) -> list[dict[str, Any]]:
    """The passed-here records of an HDF5 product, oldest first (this module's own is last)."""
    out = []
    with h5py.File(path, "r") as f:
        if "passed_here" not in f:
            raise Mismatch(f"{path.name}: no /passed_here records")
        for name in sorted(f["passed_here"]):
            g = f["passed_here"][name]
            rec = {k: _plain(v) for k, v in g.attrs.items()}
            rec["inputs"] = [tuple(_plain(x) for x in row) for row in g["inputs"][()]]
            out.append(rec)
    return out


def _t(s: str) -> float:
    return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC).timestamp()


def span(recs: list[dict[str, Any]]) -> float:
    return round(max(_t(r["end_utc"]) for r in recs) - min(_t(r["start_utc"]) for r in recs), 2)


def labels(recs: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("param_label", r["module"])) for r in recs]


@dataclass
class Ctx:
    """What a check may look at besides the outputs."""

    expect: Expect
    inputs: dict[str, Path]          # Euclid example inputs + truth
    fan_out: int = 200
    n_side: int = 2
    walltime_sleep: float = 5.0
    retry_counter: Path | None = None
    log_text: Callable[[], str] = lambda: ""
    failure_run: dict[str, Any] | None = None   # filled by validate for walltime/expected_failure


# ---- the features -------------------------------------------------------------------------

def check_euclid_example(out: dict[str, Any], ctx: Ctx) -> Verdict:
    from astropy.io import fits
    from astropy.stats import sigma_clipped_stats
    from astropy.table import Table

    e = ctx.expect.value
    cat = Table.read(local_path(out.get("catalogue"), "catalogue"), format="ascii.ecsv")
    truth = Table.read(ctx.inputs["truth"], format="ascii.ecsv")
    quality = json.loads(local_path(out.get("quality"), "quality file").read_text())
    tree = json.loads(local_path(out.get("lineage"), "lineage file").read_text())
    # Science: every injected star found at the right place with the right flux.
    matched, ratios = 0, []
    for row in truth:
        d = np.hypot(cat["x"] - row["x"], cat["y"] - row["y"]) if len(cat) else np.array([])
        if len(d) and d.min() < 1.0:
            matched += 1
            ratios.append(float(cat["flux"][int(d.argmin())] / row["flux"]))
    frac = matched / len(truth)
    at_least("fraction of injected stars recovered within 1 px", e("euclid_example", 0.95), frac)
    ratio = float(np.median(ratios))
    if abs(ratio - 1) > 0.03:
        raise Mismatch(f"median measured/injected flux {ratio:.3f}, expected 1 +- 0.03")
    # Dark and flat really removed: the raw frame's quadrant backgrounds differ, the result's don't.
    with fits.open(ctx.inputs["raw"]) as h:
        raw = h[0].data.astype(float)
    n = raw.shape[0] // 2
    q = [sigma_clipped_stats(raw[a:a + n, b:b + n])[1] for a in (0, n) for b in (0, n)]
    raw_nonuni = (max(q) - min(q)) / np.median(q)
    if not quality["background_nonuniformity"] < 0.01 < raw_nonuni:
        raise Mismatch(f"background non-uniformity raw {raw_nonuni:.3f} -> corrected "
                       f"{quality['background_nonuniformity']:.4f}; expected < 0.01 after "
                       "dark/flat correction")
    # Lineage: catalogue <- extract(image <- combine <- n x flat <- n x dark <- split(raw)).
    node = tree["outputs"]["catalogue"]
    equal("catalogue produced by", "extract", node.get("step"))
    equal("catalogue's inputs", ["catalog_spec", "image"], sorted(node["inputs"]))
    steps: list[str] = []
    leaves: set[str] = set()

    def walk(n: dict[str, Any]) -> None:
        if "step" in n:
            steps.append(n["step"])
            for v in n["inputs"].values():
                for child in v:
                    walk(child)
        else:
            leaves.add(n["source"])

    walk(node)
    pieces = ctx.n_side ** 2
    equal("catalogue's lineage leaves", sorted(e("euclid_example", ["catalog_spec", "dark",
                                                                     "flat", "raw"])),
          sorted(leaves))
    equal("correct_dark steps in the catalogue's lineage", pieces, steps.count("correct_dark"))
    equal("correct_flat steps in the catalogue's lineage", pieces, steps.count("correct_flat"))
    recs = tree["records"]
    dur = round(max(_t(r["end_utc"]) for r in recs) - min(_t(r["start_utc"]) for r in recs), 2)
    note = (f"{matched}/{len(truth)} injected stars recovered, flux ratio {ratio:.3f}; background "
            f"non-uniformity {raw_nonuni:.3f} raw -> {quality['background_nonuniformity']:.4f}; "
            f"lineage: {render(node)}")
    return Verdict(True, note=note, duration_s=dur,
                   details={"catalogue_lineage": node, "n_detected": len(cat),
                            "n_injected": len(truth), "images": sorted({r["image"]
                                                                        for r in recs})})


def render(node: dict[str, Any]) -> str:
    """catalogue.ecsv <- extract(image=combined.fits <- combine_images(...), ...)."""
    if "step" not in node:
        return f"{node['file']}[{node['source']}]"
    parts = []
    for k, v in node["inputs"].items():
        if len(v) > 1 and all("step" in c for c in v):
            parts.append(f"{k}={len(v)}x {render(v[0])}")
        else:
            parts.append(f"{k}=" + "+".join(render(c) for c in v))
    return f"{node['file']} <- {node['step']}({', '.join(parts)})"


def check_scatter_gather(out: dict[str, Any], ctx: Ctx) -> Verdict:
    e = ctx.expect.value
    parts = [local_path(p, "part") for p in (out.get("parts") or [])]
    summary = records(local_path(out.get("summary"), "summary"))
    own = summary[-1]
    equal("gathered module", "gather", own["module"])
    equal("scattered parts", e("scatter_gather", 5), len(parts))
    equal("inputs of the gather step", e("scatter_gather", 5), len(own["inputs"]))
    equal("gathered input checksums", sorted(sha256(p) for p in parts),
          sorted(x[2] for x in own["inputs"]))
    idx = sorted(r["param_index"] for r in summary if r["module"] == "producer")
    equal("scattered indexes", list(range(5)), idx)
    return Verdict(True, note=f"{len(parts)} scattered jobs x 2 steps gathered by checksum",
                   duration_s=span(summary))


def check_nested_subworkflows(out: dict[str, Any], ctx: Ctx) -> Verdict:
    recs = records(local_path(out.get("product"), "product"))
    equal("passed-here chain", ctx.expect.value("nested_subworkflows",
                                                ["nest_l1", "nest_l2", "nest_l3"]), labels(recs))
    return Verdict(True, note="chain nest_l1 -> nest_l2 -> nest_l3 across 3 workflow levels",
                   duration_s=span(recs))


def check_conditional_pickvalue(out: dict[str, Any], ctx: Ctx) -> Verdict:
    e = ctx.expect.value
    chosen = records(local_path(out.get("chosen"), "chosen product"))
    equal("branch picked (the_only_non_null)", e("conditional_pickvalue", "fast"),
          labels(chosen)[-1])
    if out.get("not_run") is not None:
        raise Mismatch("the 'slow' branch ran although its `when` was false")
    evens = [records(local_path(f, "even product")) for f in (out.get("evens") or [])]
    equal("indexes kept by when + all_non_null", [0, 2, 4],
          sorted(r[-1]["param_index"] for r in evens))
    return Verdict(True, note="when chose 'fast', skipped 'slow'; all_non_null kept 0,2,4 of 0-5",
                   duration_s=span(chosen + [r for ev in evens for r in ev]))


def check_dynamic_resources(out: dict[str, Any], ctx: Ctx) -> Verdict:
    plan = json.loads(local_path(out.get("plan"), "plan").read_text())
    own = records(local_path(out.get("product"), "product"))
    e = ctx.expect.value
    equal("cores given to the sized step (from plan.json)", e("dynamic_resources",
                                                              float(plan["plan_cores"])),
          float(own[-1]["runtime_cores"]))
    equal("RAM MiB given to the sized step (from plan.json)", float(plan["plan_ram_mb"]),
          float(own[-1]["runtime_ram_mb"]))
    return Verdict(True, note=f"plan.json asked {plan['plan_cores']} cores / "
                              f"{plan['plan_ram_mb']} MiB; the step got exactly that",
                   duration_s=span(own))


def check_tmpdir(out: dict[str, Any], ctx: Ctx) -> Verdict:
    recs = records(local_path(out.get("product"), "product"))
    own = recs[-1]
    equal("MiB written and read back in tmpdir", ctx.expect.value("tmpdir", 32), own["io_mb"])
    equal("tmpdir round-trip checksum verified", 1, own["io_verified"])
    if not own["runtime_tmpdir"] or own["runtime_tmpdir"] == own["runtime_outdir"]:
        raise Mismatch(f"tmpdir {own['runtime_tmpdir']!r} is not separate from outdir")
    return Verdict(True, note=f"{own['io_mb']} MiB written and read back (checksum verified) in "
                              "the step's own tmpdir, apart from its outdir",
                   duration_s=span(recs), details={"tmpdir": own["runtime_tmpdir"]})


def check_retry(out: dict[str, Any], ctx: Ctx) -> Verdict:
    recs = records(local_path(out.get("product"), "product"))
    own = recs[-1]
    equal("attempt that succeeded", ctx.expect.value("retry", 2), own["attempt"])
    counted = int(ctx.retry_counter.read_text()) if ctx.retry_counter else -1
    equal("attempts counted", 2, counted)
    if "failing attempt 1" not in ctx.log_text():
        raise Mismatch("the runner's log does not show the failed first attempt")
    return Verdict(True, note="attempt 1 failed on purpose, the runner retried, attempt 2 passed",
                   duration_s=span(recs))


def check_secondary_files(out: dict[str, Any], ctx: Ctx) -> Verdict:
    indexed = out.get("indexed") or {}
    sec = [s for s in indexed.get("secondaryFiles", []) if s["basename"].endswith(".sha256")]
    equal("secondary files delivered with the product", ctx.expect.value("secondary_files", 1),
          len(sec))
    path = local_path(indexed, "indexed product")
    equal("sidecar checksum", sha256(path), local_path(sec[0], "sidecar").read_text().split()[0])
    recs = records(local_path(out.get("product"), "reader product"))
    equal("reader verified the staged sidecar", 1, recs[-1]["secondary_verified"])
    return Verdict(True, note="product + .sha256 staged together and verified by the reader",
                   duration_s=span(recs))


def check_fan_out(out: dict[str, Any], ctx: Ctx) -> Verdict:
    recs = records(local_path(out.get("summary"), "summary"))
    own = recs[-1]
    n = ctx.expect.value("fan_out", ctx.fan_out)
    equal("scattered jobs gathered", n, len(own["inputs"]))
    prod = [r for r in recs if r["module"] == "producer"]
    equal("distinct scattered jobs recorded", n, len({r["record_id"] for r in prod}))
    equal("indexes", list(range(ctx.fan_out)), sorted(r["param_index"] for r in prod))
    d = span(recs)
    return Verdict(True, note=f"{len(prod)} scattered jobs in {d:.0f} s "
                              f"({len(prod) / max(d, 1e-9):.2f} jobs/s)", duration_s=d,
                   details={"jobs": len(prod), "jobs_per_s": round(len(prod) / max(d, 1e-9), 2)})


def check_walltime(out: dict[str, Any], ctx: Ctx) -> Verdict:
    recs = records(local_path(out.get("product"), "product"))
    own = recs[-1]
    at_least("seconds the long step ran", ctx.expect.value("walltime", ctx.walltime_sleep),
             own["wall_s"])
    fr = ctx.failure_run
    if fr is None:
        return Verdict(True, note="long step completed within its ToolTimeLimit (overrun not "
                                  "tested)", duration_s=span(recs))
    if "too_long" in fr["log"] and "CWL step complete: expected_failures.too_long" in fr["log"]:
        raise Mismatch("a step overrunning its ToolTimeLimit ran to completion")
    if "exceeded time limit" not in fr["log"]:
        raise Mismatch("a step overrunning its ToolTimeLimit was not killed (no 'exceeded time "
                       "limit' in the runner's log)")
    return Verdict(True, note=f"{own['wall_s']:.1f} s step completed under its limit; a step "
                              "overrunning its 30 s limit was killed", duration_s=span(recs))


def check_expected_failure(ctx: Ctx, message: str) -> Verdict:
    fr = ctx.failure_run
    if fr is None:
        raise Mismatch("the expected-failure run did not happen")
    if fr["returncode"] == 0:
        raise Mismatch("the run succeeded although step must_fail should have failed")
    expected = ctx.expect.value("expected_failure", message)
    hits = [ln.strip() for ln in fr["log"].splitlines() if expected in ln]
    # the step's own stderr line, not the command line the runner echoes
    line = next((ln for ln in hits if "fake_module:" in ln), hits[0] if hits else None)
    if line is None:
        raise Mismatch(f"the failed step's stderr ({expected!r}) is not in the runner's log")
    stderr = line[line.find("fake_module:"):] if "fake_module:" in line else line
    return Verdict(True, note=f"run failed (exit {fr['returncode']}) with the step's stderr: "
                              f"{stderr[:160]}", details={"stderr": stderr})


CHECKS: dict[str, Callable[[dict[str, Any], Ctx], Verdict]] = {
    "euclid_example": check_euclid_example,
    "scatter_gather": check_scatter_gather,
    "nested_subworkflows": check_nested_subworkflows,
    "conditional_pickvalue": check_conditional_pickvalue,
    "dynamic_resources": check_dynamic_resources,
    "tmpdir": check_tmpdir,
    "retry": check_retry,
    "secondary_files": check_secondary_files,
    "fan_out": check_fan_out,
    "walltime": check_walltime,
}
