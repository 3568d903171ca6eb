"""MSAP5 stellar parameters, a C program on libhdf5: its results against a Python copy of the
equations (the oracle: the former Python module's code), the chunk contract, per-star failure
isolation and the command line.

The program is built with make into a temporary folder when this host has a C compiler and
libhdf5-dev; else it runs in its image (localhost/stellarflow/msap5_stellar_parameters:<version>)
with podman; with neither the tests skip. MSAP5_TEST_RUNNER=host|image forces one of the two.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.optimize import brentq

from stellarflow_contracts import __version__ as CONTRACTS_VERSION  # = the C header's (a test)
from stellarflow_contracts.chunk import summarise
from stellarflow_contracts.conform import check_chunk

NAME = "msap5_stellar_parameters"
MODULE_DIR = Path(__file__).resolve().parents[1]
REPO = MODULE_DIR.parents[1]
DATA = MODULE_DIR / "tests" / "data"
RESULTS = ("teff", "radius_rsun", "radius_err_rsun", "mass_msun", "mass_err_msun", "age_gyr",
           "age_err_gyr", "bv")
REL_TOL = 1e-9

# ---------------------------------------------------------------- the oracle: the equations
# A copy of the former Python module's equations (stellarflow_contracts/solar.py values).
NUMAX_SUN, DNU_SUN, TEFF_SUN, LOGG_SUN = 3090.0, 135.1, 5777.0, 4.438
TEFF_ERR_DEFAULT, LOGG_ERR_DEFAULT, FEH_DEFAULT = 100.0, 0.1, 0.0
TORRES_A = (1.5689, 1.3787, 0.4243, 1.139, -0.1425, 0.01969, 0.1010)
TORRES_B = (2.4427, 0.6679, 0.1771, 0.705, -0.21415, 0.02306, 0.04173)
TORRES_SCATTER_LOGM, TORRES_SCATTER_LOGR = 0.027, 0.014
GYRO_A, GYRO_B, GYRO_C, GYRO_N = 0.7725, 0.601, 0.4, 0.5189
GYRO_REL_ERR = 0.15
SEISMIC = "seismic scaling relations"
TORRES = "Torres et al. 2010 (catalogue Teff, log g, [Fe/H])"
TORRES_SEISMIC_LOGG = "Torres et al. 2010 with the seismic log g (numax, Teff)"


def _finite(*values: float) -> bool:
    return all(v is not None and np.isfinite(v) and v > 0 for v in values)


def seismic(numax: float, numax_err: float, dnu: float, dnu_err: float, teff: float,
            teff_err: float = TEFF_ERR_DEFAULT) -> tuple[float, float, float, float]:
    x, y, z = numax / NUMAX_SUN, dnu / DNU_SUN, teff / TEFF_SUN
    radius = x * y**-2 * z**0.5
    mass = x**3 * y**-4 * z**1.5
    rx = numax_err / numax if np.isfinite(numax_err) else 0.05
    ry = dnu_err / dnu if np.isfinite(dnu_err) else 0.03
    rz = teff_err / teff
    r_err = radius * math.sqrt(rx**2 + (2 * ry) ** 2 + (0.5 * rz) ** 2)
    m_err = mass * math.sqrt((3 * rx) ** 2 + (4 * ry) ** 2 + (1.5 * rz) ** 2)
    return radius, r_err, mass, m_err


def _torres(teff: float, logg: float, feh: float) -> tuple[float, float]:
    x = math.log10(teff) - 4.1
    terms = (1.0, x, x**2, x**3, logg**2, logg**3, feh)
    log_m = sum(a * t for a, t in zip(TORRES_A, terms, strict=True))
    log_r = sum(b * t for b, t in zip(TORRES_B, terms, strict=True))
    return 10**log_m, 10**log_r


def torres2010(teff: float, logg: float, feh: float = FEH_DEFAULT,
               teff_err: float = TEFF_ERR_DEFAULT, logg_err: float = LOGG_ERR_DEFAULT
               ) -> tuple[float, float, float, float]:
    mass, radius = _torres(teff, logg, feh)
    m_t, r_t = _torres(teff + teff_err, logg, feh)
    m_g, r_g = _torres(teff, logg + logg_err, feh)
    ln10 = math.log(10.0)
    r_err = radius * math.sqrt(math.log(r_t / radius) ** 2 + math.log(r_g / radius) ** 2
                               + (TORRES_SCATTER_LOGR * ln10) ** 2)
    m_err = mass * math.sqrt(math.log(m_t / mass) ** 2 + math.log(m_g / mass) ** 2
                             + (TORRES_SCATTER_LOGM * ln10) ** 2)
    return radius, r_err, mass, m_err


def bv_from_teff(teff: float) -> float:
    def f(bv: float) -> float:
        return 4600.0 * (1.0 / (0.92 * bv + 1.7) + 1.0 / (0.92 * bv + 0.62)) - teff

    try:
        return float(brentq(f, -0.4, 2.5))
    except ValueError:
        return math.nan


def gyro_age(prot_d: float, prot_err_d: float, teff: float) -> tuple[float, float, float]:
    bv = bv_from_teff(teff)
    if not (np.isfinite(bv) and 0.45 < bv < 1.6 and _finite(prot_d)):
        return math.nan, math.nan, bv
    age_myr = (prot_d / (GYRO_A * (bv - GYRO_C) ** GYRO_B)) ** (1.0 / GYRO_N)
    rel_p = prot_err_d / prot_d if np.isfinite(prot_err_d) else 0.1
    rel = math.sqrt((rel_p / GYRO_N) ** 2 + GYRO_REL_ERR**2)
    return age_myr / 1000.0, age_myr / 1000.0 * rel, bv


def derive(teff: float, logg: float, feh: float, numax: float, numax_err: float, dnu: float,
           dnu_err: float, prot_d: float, prot_err_d: float) -> dict[str, object]:
    """What the program writes for an ok star: the RESULTS and parameters_method."""
    r = dict.fromkeys(RESULTS, math.nan)
    r["teff"], method = teff, "none"
    if _finite(numax, dnu, teff):
        rm = seismic(numax, numax_err, dnu, dnu_err, teff)
        method = SEISMIC
    elif _finite(numax, teff):
        # numax alone: the seismic log g into Torres et al. (the Python reference of 0.2.0)
        logg_s = (LOGG_SUN + math.log10(numax / NUMAX_SUN) + 0.5 * math.log10(teff / TEFF_SUN))
        rel = numax_err / numax if np.isfinite(numax_err) else 0.05
        feh = feh if feh is not None and np.isfinite(feh) else FEH_DEFAULT
        rm = torres2010(teff, logg_s, feh, logg_err=math.hypot(rel / math.log(10.0), 0.01))
        method = TORRES_SEISMIC_LOGG
    elif _finite(teff) and logg is not None and np.isfinite(logg):
        feh = feh if feh is not None and np.isfinite(feh) else FEH_DEFAULT
        rm = torres2010(teff, logg, feh)
        method = TORRES
    if method != "none":
        r["radius_rsun"], r["radius_err_rsun"], r["mass_msun"], r["mass_err_msun"] = rm
    if _finite(teff):
        r["age_gyr"], r["age_err_gyr"], r["bv"] = gyro_age(prot_d, prot_err_d, teff)
    r["parameters_method"] = method
    return r


INPUTS = {"prepared": ("teff", "logg", "feh"),
          "seismology": ("numax_uhz", "numax_err_uhz", "dnu_uhz", "dnu_err_uhz"),
          "rotation": ("prot_d", "prot_err_d")}


def expected(star: dict[str, dict | None]) -> dict[str, object] | None:
    """The oracle's result for a star of write_inputs' form (None: Python raises, the star
    fails)."""
    def get(stage: str, key: str) -> float:
        g = star.get(stage)
        return float(g[key]) if g is not None and key in g else math.nan

    args = [get(stage, key) for stage, keys in INPUTS.items() for key in keys]
    teff, logg, feh, numax, numax_err, dnu, dnu_err, prot, prot_err = args
    try:
        return derive(teff, logg, feh, numax, numax_err, dnu, dnu_err, prot, prot_err)
    except (ArithmeticError, ValueError, RuntimeError):
        return None


# ---------------------------------------------------------------- chunk files for the program


def write_inputs(folder: Path, stars: dict[str, dict[str, dict | None]],
                 stages: tuple[str, ...] = ("prepared", "rotation", "seismology"),
                 chunk_id: str = "chunk-0007") -> dict[str, Path]:
    """One chunk file per stage; ``stars[sid][stage]`` is that star's attrs there (status ok
    unless given), or None/absent for no group."""
    paths = {}
    for stage in stages:
        path = folder / f"{chunk_id}.{stage}.h5"
        with h5py.File(path, "w") as f:
            f.attrs["chunk_id"] = chunk_id
            f.attrs["observation_id"] = "obs-test"
            f.attrs["stage"] = stage
            f.attrs["contracts_version"] = "1.0.0"
            f.attrs["star_ids"] = np.array(list(stars), dtype=h5py.string_dtype())
            grp = f.create_group("stars")
            for sid, star in stars.items():
                attrs = star.get(stage)
                if attrs is None:
                    continue
                g = grp.create_group(sid)
                g.attrs["status"], g.attrs["error"], g.attrs["cpu_s"] = "ok", "", 0.01
                for k, v in attrs.items():
                    g.attrs[k] = v
        paths[stage] = path
    return paths


def star(teff: float = math.nan, logg: float = math.nan, feh: float = math.nan, *,
         seis: dict | None = None, rot: dict | None = None) -> dict[str, dict | None]:
    return {"prepared": {"teff": teff, "logg": logg, "feh": feh}, "seismology": seis,
            "rotation": rot}


# ---------------------------------------------------------------- how the program is run


def _version() -> str:
    m = re.search(r"^version:\s*([^\s#]+)", (MODULE_DIR / "module.yml").read_text(), re.M)
    assert m, "module.yml has no version"
    return m.group(1).strip("'\"")


IMAGE = f"localhost/stellarflow/{NAME}:{_version()}"


@dataclass
class Runner:
    kind: str  # "host" (a build of this checkout) or "image" (podman)
    exe: str
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, args: list[str], cwd: Path) -> list[str]:
        if self.kind == "host":
            return [self.exe, *args]
        return [self.exe, "run", "--rm", "--network=none", "-v", f"{cwd}:{cwd}", "-w", str(cwd),
                IMAGE, NAME, *args]

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(args, cwd), cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=120)

    def popen(self, args: list[str], cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(self.argv(args, cwd), cwd=cwd, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _host_can_build() -> str | None:
    """Why this host cannot build the program, or None."""
    if not (shutil.which("make") and (shutil.which("cc") or shutil.which("gcc"))):
        return "no make or C compiler"
    if not Path("/usr/include/hdf5/serial/hdf5.h").exists() and not (
            shutil.which("pkg-config") and subprocess.run(
                ["pkg-config", "--exists", "hdf5-serial"]).returncode == 0):
        return "no HDF5 headers (libhdf5-dev)"
    return None


def _podman_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLARFLOW_IMAGE")}
    env["PATH"] = os.pathsep.join([str(REPO / "scripts" / "bin"), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def msap5(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    want = os.environ.get("MSAP5_TEST_RUNNER", "")
    why_not_host = _host_can_build()
    env = _podman_env()
    if want != "image" and why_not_host is None:
        build = tmp_path_factory.mktemp("msap5_build")
        r = subprocess.run(["make", "-C", str(MODULE_DIR), f"BUILD={build}"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
        return Runner("host", str(build / NAME), env)
    if want == "host":
        pytest.skip(f"MSAP5_TEST_RUNNER=host but this host cannot build it: {why_not_host}")
    podman = shutil.which("podman", path=env["PATH"])
    if podman and subprocess.run([podman, "image", "exists", IMAGE], env=env,
                                 capture_output=True).returncode == 0:
        return Runner("image", podman, env)
    pytest.skip(f"cannot build {NAME} here ({why_not_host}) and no image {IMAGE} "
                "(scripts/build-images msap5_stellar_parameters)")


def run_chunk(msap5: Runner, paths: dict[str, Path], outdir: Path,
              extra: list[str] | None = None) -> Path:
    args = ["--outdir", str(outdir)]
    for stage, path in paths.items():
        args += [f"--{stage}", str(path)]
    # The folder holding every file (mounted as itself when the program runs in its image).
    cwd = Path(os.path.commonpath([outdir, *paths.values()]))
    r = msap5.run([*args, *(extra or [])], cwd)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    return outdir / f"{h5py.File(paths['prepared']).attrs['chunk_id']}.parameters.h5"


def read_stars(out: Path) -> dict[str, dict[str, object]]:
    with h5py.File(out) as f:
        return {sid: {k: (v.decode() if isinstance(v, bytes) else v)
                      for k, v in f["stars"][sid].attrs.items()} for sid in f["stars"]}


def rel_diff(a: float, b: float) -> float:
    if (math.isnan(a) and math.isnan(b)) or a == b:
        return 0.0
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def compare(got: dict[str, object], want: dict[str, object] | None, sid: str) -> float:
    """Largest relative difference of an ok star's results (asserting status and method)."""
    if want is None:
        assert got["status"] == "failed", (sid, got)
        err = str(got["error"])
        assert err.startswith(f"{NAME}: ") and "\n" not in err, (sid, err)
        return 0.0
    assert got["status"] == "ok" and got["error"] == "", (sid, got)
    assert got["parameters_method"] == want["parameters_method"], sid
    worst = 0.0
    for key in RESULTS:
        assert isinstance(got[key], np.float64), (sid, key, type(got[key]))
        d = rel_diff(float(got[key]), float(want[key]))
        assert d <= REL_TOL, (sid, key, got[key], want[key])
        worst = max(worst, d)
    return worst


def python_summary(out: Path) -> str:
    with h5py.File(out) as f:
        return json.dumps(summarise(f), indent=1, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- command line


def test_version_help_and_usage_errors(msap5: Runner, tmp_path: Path) -> None:
    r = msap5.run(["--version"], tmp_path)
    assert (r.returncode, r.stdout) == (0, f"{NAME} {_version()}\n")
    r = msap5.run(["--help"], tmp_path)
    assert r.returncode == 0 and "--seismology SEISMOLOGY" in r.stdout
    for args, what in [([], "the following arguments are required: --prepared, --rotation"),
                       (["--prepared", "a.h5"], "required: --rotation"),
                       (["--prepared"], "argument --prepared: expected one argument"),
                       (["--prepared", "a", "--rotation", "b", "x"],
                        "unrecognized arguments: x")]:
        r = msap5.run(args, tmp_path)
        assert r.returncode == 2, args
        assert r.stderr.startswith(f"{NAME}: error: ") and what in r.stderr, r.stderr
        assert r.stderr.endswith(" (see --help)\n") and r.stderr.count("\n") == 1, r.stderr


def test_bad_input_files_are_one_line(msap5: Runner, tmp_path: Path) -> None:
    good = write_inputs(tmp_path, {"s1": star(5777.0, 4.44)})
    (tmp_path / "text.h5").write_text("not HDF5\n")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = 1
    with h5py.File(tmp_path / "v2.h5", "w") as f:
        f.create_group("stars")
        f.attrs["chunk_id"], f.attrs["contracts_version"] = "c", "2.0.0"
    cases = [("absent.h5", "unreadable chunk HDF5"), ("text.h5", "unreadable chunk HDF5"),
             ("plain.h5", "not a stellarflow chunk file (no /stars or chunk_id)"),
             ("v2.h5", "written with contracts 2.0.0, this module reads 1.x")]
    for name, what in cases:
        bad = str(tmp_path / name)
        for role in ("prepared", "rotation", "seismology"):
            args = {"prepared": str(good["prepared"]), "rotation": str(good["rotation"]),
                    role: bad}
            r = msap5.run([a for k, v in args.items() for a in (f"--{k}", v)], tmp_path)
            assert r.returncode == 2, (name, role, r.stderr)
            assert r.stderr.startswith(f"{NAME}: {bad}: {what}"), r.stderr
            assert r.stderr.count("\n") == 1, r.stderr  # HDF5's own error stack stays quiet
    assert not list(tmp_path.glob("*.parameters.*"))


def _catches_sigterm(marker: str) -> bool:
    """Whether the program (the process whose argv[0] is it and whose arguments name
    ``marker``; in its container too: podman is rootful, its processes are ours to see) has
    installed its SIGTERM handler (SigCgt of /proc/PID/status)."""
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            if not (argv[0].decode(errors="replace").endswith(NAME)
                    and any(marker.encode() in a for a in argv)):
                continue
            status = (d / "status").read_text()
        except OSError:
            continue
        caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
        return bool(caught & (1 << (signal.SIGTERM - 1)))
    return False


def test_sigterm_exits_143(msap5: Runner, tmp_path: Path) -> None:
    """SIGTERM ends the program with 143 (as PID 1 of a container a process without a handler
    ignores it): here while it waits to open a FIFO given as its input."""
    fifo = tmp_path / "blocked.prepared.h5"
    os.mkfifo(fifo)
    p = msap5.popen(["--prepared", str(fifo), "--rotation", str(fifo)], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not _catches_sigterm(str(fifo)):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the program never installed its handler"
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)  # podman run passes it on to the container
        assert p.wait(timeout=60) == 143
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()


# ---------------------------------------------------------------- the committed fixture


def test_fixture_chunk(msap5: Runner, tmp_path: Path) -> None:
    """The chunk the pipeline's modules made (tests/data/make_fixtures.py): the results of the
    oracle, the contract, failed stars carried, and the summary Python would write."""
    paths = {}
    for stage in ("prepared", "rotation", "seismology"):
        paths[stage] = tmp_path / f"chunk-0000.{stage}.h5"
        shutil.copy(DATA / paths[stage].name, paths[stage])
    out = run_chunk(msap5, paths, tmp_path)
    assert out.name == "chunk-0000.parameters.h5"
    assert check_chunk(out) == []
    with h5py.File(out) as f:
        root = dict(f.attrs)
        for k in f.attrs:
            assert h5py.check_string_dtype(f.attrs.get_id(k).dtype).encoding == "utf-8", k
        with h5py.File(paths["prepared"]) as p:
            assert list(root["star_ids"]) == list(p.attrs["star_ids"])
            assert root["observation_id"] == p.attrs["observation_id"]
    assert {k: root[k] for k in ("chunk_id", "stage", "module", "module_version",
                                 "contracts_version")} == {
        "chunk_id": "chunk-0000", "stage": "parameters", "module": NAME,
        "module_version": _version(), "contracts_version": CONTRACTS_VERSION}
    if msap5.kind == "host":
        assert (root["image"], root["image_digest"]) == ("none (no container)", "")
    else:
        assert root["image"] == IMAGE and root["image_digest"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", root["created_utc"])
    assert root["host"]

    got = read_stars(out)
    ins: dict[str, dict[str, dict | None]] = {}
    for stage, path in paths.items():
        with h5py.File(path) as f:
            for sid in got:
                g = f["stars"].get(sid)
                ins.setdefault(sid, {})[stage] = None if g is None else {
                    k: v for k, v in g.attrs.items() if k in INPUTS[stage] or k == "status"}
    assert got["missing"]["status"] == "failed" and got["missing"]["cpu_s"] == 0.0
    assert got["missing"]["error"] == "ingest: lc/missing.h5: light curve not found"
    assert got["broken"] == {"status": "failed", "cpu_s": got["broken"]["cpu_s"], "error":
                             f"{NAME}: prepared: star broken: missing attribute 'teff'"}
    for sid in ("star00000", "star00001", "star00002"):
        compare(got[sid], expected(ins[sid]), sid)
        assert got[sid]["cpu_s"] >= 0.0
    assert {got[s]["parameters_method"] for s in ("star00000", "star00001", "star00002")} <= {
        SEISMIC, TORRES, TORRES_SEISMIC_LOGG, "none"}
    summary = (tmp_path / "chunk-0000.parameters.summary.json").read_text()
    assert summary == python_summary(out)


# ---------------------------------------------------------------- known stars


KNOWN = {
    # The Sun from its own numax, dnu, Teff: exactly one solar radius and mass.
    "sun_seismic": star(5777.0, 4.438, 0.0, seis={"numax_uhz": 3090.0, "numax_err_uhz": 30.0,
                                                   "dnu_uhz": 135.1, "dnu_err_uhz": 0.1},
                        rot={"prot_d": 26.1, "prot_err_d": 1.0}),
    # KIC 1435467 (SYD table numax, dnu; Teff ~ 6300 K): R ~ 1.7, M ~ 1.4 (Huber et al. scale).
    "kic1435467": star(6326.0, 4.1, 0.0, seis={"numax_uhz": 1382.0, "numax_err_uhz": 9.0,
                                               "dnu_uhz": 70.56, "dnu_err_uhz": 0.05}),
    # The Sun from the catalogue values only (Torres et al. 2010), with its rotation.
    "sun_torres": star(5777.0, 4.438, 0.0, seis={"numax_uhz": math.nan, "dnu_uhz": math.nan},
                       rot={"prot_d": 26.1, "prot_err_d": 1.0}),
    # No [Fe/H] (NaN): 0 is used; integer and float32 attributes read as numbers.
    "no_feh": star(np.int64(5600), np.float32(4.5), math.nan, rot={"prot_d": 20.0}),
    "nothing": star(),
    # Outside the gyrochronology calibration (B-V < 0.45): no age.
    "hot": star(7500.0, 4.0, 0.0, rot={"prot_d": 1.0, "prot_err_d": 0.1}),
    # Teff outside what B-V on [-0.4, 2.5] covers: B-V NaN, Torres still.
    "very_cool": star(2000.0, 5.0, 0.0, rot={"prot_d": 30.0}),
    # numax without dnu, and a negative numax: the catalogue fallback.
    "half_seismic": star(5000.0, 4.6, -0.3, seis={"numax_uhz": 3000.0}),
    "negative_numax": star(5000.0, 4.6, -0.3, seis={"numax_uhz": -3000.0, "dnu_uhz": 130.0}),
    "negative_prot": star(5000.0, 4.6, 0.2, rot={"prot_d": -3.0}),
    # Results Python formats in every way its repr has (summary JSON).
    "teff_tiny": star(1.5e-5), "teff_huge": star(1.0e16), "teff_round_up": star(9999.5),
    "teff_small": star(0.00012345), "teff_negative_zero": star(-0.0), "teff_inf": star(math.inf),
    # Where Python raises (overflow, division by zero), the star fails, the others go on.
    "overflow_logg": star(5000.0, 400.0, 0.0),
    "overflow_numax": star(5000.0, 4.0, 0.0, seis={"numax_uhz": 1e300, "dnu_uhz": 100.0}),
    "overflow_dnu": star(5000.0, 4.0, 0.0, seis={"numax_uhz": 100.0, "dnu_uhz": 1e-320}),
    "zero_radius": star(1e-300, 4.0, 0.0),
    "overflow_prot": star(5000.0, 4.5, 0.0, rot={"prot_d": 1e300}),
}


@pytest.fixture(scope="module")
def known(msap5: Runner, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[dict[str, dict], Path]]:
    d = tmp_path_factory.mktemp("msap5_known")
    out = run_chunk(msap5, write_inputs(d, KNOWN), d)
    yield read_stars(out), out


@pytest.mark.parametrize("sid", list(KNOWN))
def test_known_star_matches_oracle(known: tuple[dict[str, dict], Path], sid: str) -> None:
    compare(known[0][sid], expected(KNOWN[sid]), sid)


def test_known_values(known: tuple[dict[str, dict], Path]) -> None:
    got, out = known
    sun = got["sun_seismic"]
    assert sun["parameters_method"] == SEISMIC
    assert sun["radius_rsun"] == pytest.approx(1.0) and sun["mass_msun"] == pytest.approx(1.0)
    assert 0 < sun["radius_err_rsun"] < 0.1 and 0 < sun["mass_err_msun"] < 0.2
    assert sun["bv"] == pytest.approx(0.65, abs=0.03)
    assert sun["age_gyr"] == pytest.approx(4.5, rel=0.15) and sun["age_err_gyr"] > 0
    kic = got["kic1435467"]
    assert kic["radius_rsun"] == pytest.approx(1.71, rel=0.03)
    assert kic["mass_msun"] == pytest.approx(1.37, rel=0.05)
    tor = got["sun_torres"]
    assert tor["parameters_method"] == TORRES
    assert tor["radius_rsun"] == pytest.approx(1.0, rel=0.05)
    assert tor["mass_msun"] == pytest.approx(1.0, rel=0.07)
    assert tor["radius_err_rsun"] > 0 and tor["mass_err_msun"] > 0
    assert got["nothing"]["parameters_method"] == "none"
    assert math.isnan(got["nothing"]["radius_rsun"])
    assert math.isnan(got["hot"]["age_gyr"]) and got["hot"]["bv"] < 0.45
    for sid in ("overflow_logg", "overflow_numax", "overflow_dnu", "zero_radius",
                "overflow_prot"):
        assert got[sid]["status"] == "failed", sid
        assert set(got[sid]) == {"status", "error", "cpu_s"}, sid
    assert (out.parent / f"{out.name[:-3]}.summary.json").read_text() == python_summary(out)


# ---------------------------------------------------------------- random inputs


def _random_stars(n: int, seed: int) -> dict[str, dict[str, dict | None]]:
    rng = np.random.default_rng(seed)

    def pick(value: float, p_nan: float, p_missing: float = 0.0) -> float | None:
        u = rng.random()
        return None if u < p_missing else math.nan if u < p_missing + p_nan else value

    stars = {}
    for i in range(n):
        teff = rng.choice([rng.uniform(2000.0, 25000.0), math.nan, -rng.uniform(1, 5000), 0.0],
                          p=[0.85, 0.08, 0.04, 0.03])
        prep = {"teff": float(teff), "logg": pick(rng.uniform(1.0, 5.5), 0.15),
                "feh": pick(rng.uniform(-2.0, 0.6), 0.3)}
        numax = 10 ** rng.uniform(0.0, 3.7) * (-1 if rng.random() < 0.03 else 1)
        dnu = 0.263 * abs(numax) ** 0.772 * rng.uniform(0.9, 1.1)
        seis = {"numax_uhz": pick(numax, 0.25, 0.1),
                "numax_err_uhz": pick(abs(numax) * rng.uniform(0.005, 0.2), 0.2, 0.1),
                "dnu_uhz": pick(dnu, 0.15, 0.05),
                "dnu_err_uhz": pick(dnu * rng.uniform(0.001, 0.05), 0.2, 0.1)}
        prot = 10 ** rng.uniform(-0.5, 2.0) * (-1 if rng.random() < 0.05 else 1)
        rot = {"prot_d": pick(prot, 0.2, 0.05),
               "prot_err_d": pick(abs(prot) * rng.uniform(0.01, 0.3), 0.3, 0.1)}
        stars[f"r{i:04d}"] = {
            "prepared": prep,
            "seismology": None if rng.random() < 0.1 else
            {k: v for k, v in seis.items() if v is not None},
            "rotation": None if rng.random() < 0.1 else
            {k: v for k, v in rot.items() if v is not None}}
    return stars


def test_random_inputs_match_python(msap5: Runner, tmp_path: Path) -> None:
    """Several hundred random stars (every branch, NaN and missing inputs): the same results
    as the Python equations to 1e-9 relative, and the summary Python would write."""
    stars = _random_stars(400, seed=2026)
    out = run_chunk(msap5, write_inputs(tmp_path, stars), tmp_path)
    got = read_stars(out)
    worst = 0.0
    methods: dict[str, int] = {}
    for sid, s in stars.items():
        want = expected(s)
        worst = max(worst, compare(got[sid], want, sid))
        key = "failed" if want is None else str(want["parameters_method"])
        methods[key] = methods.get(key, 0) + 1
    assert worst <= REL_TOL
    assert methods.get(SEISMIC, 0) > 50 and methods.get(TORRES, 0) > 50, methods
    assert sum(np.isfinite(got[s]["age_gyr"]) for s in got if got[s]["status"] == "ok") > 20
    assert (tmp_path / "chunk-0007.parameters.summary.json").read_text() == python_summary(out)
    print(f"max relative difference C vs Python over {len(stars)} stars: {worst:.3g}; "
          f"{methods}")


# ---------------------------------------------------------------- failure isolation


def test_failed_and_broken_stars_are_isolated(msap5: Runner, tmp_path: Path) -> None:
    ok = star(5777.0, 4.438, 0.0, rot={"prot_d": 26.1})
    stars = {
        "ok1": ok,
        "failed_in_seismology": {**ok, "seismology": {"status": "failed",
                                                      "error": "msap3_seismology: bad \"psd\""}},
        "failed_in_rotation": {**ok, "rotation": {"status": "failed", "error": "x: ü\ty"}},
        "teff_is_text": {**ok, "prepared": {"teff": "5777", "logg": 4.4, "feh": 0.0}},
        "no_logg": {**ok, "prepared": {"teff": 5777.0, "feh": 0.0}},
        "two_fehs": {**ok, "prepared": {"teff": 5777.0, "logg": 4.4, "feh": [0.0, 0.1]}},
        "prot_is_text": {**ok, "rotation": {"prot_d": "26"}},
        "not_in_rotation": {**ok, "rotation": None},
        "rotation_note_only": {**ok, "rotation": {"note": "msap4_rotation: baseline too short"}},
        "ok2": ok,
    }
    paths = write_inputs(tmp_path, stars)
    out = run_chunk(msap5, paths, tmp_path)
    got = read_stars(out)
    assert list(got) == sorted(stars)  # every star has its group
    with h5py.File(out) as f:
        assert list(f.attrs["star_ids"]) == list(stars)
    assert got["failed_in_seismology"] == {"status": "failed", "cpu_s": 0.0,
                                           "error": "msap3_seismology: bad \"psd\""}
    assert got["failed_in_rotation"]["error"] == "x: ü\ty"
    errors = {
        "teff_is_text": f"{NAME}: prepared: star teff_is_text: attribute 'teff' is not a "
                        "number (a string)",
        "no_logg": f"{NAME}: prepared: star no_logg: missing attribute 'logg'",
        "two_fehs": f"{NAME}: prepared: star two_fehs: attribute 'feh' is not a number "
                    "(2 values)",
        "prot_is_text": f"{NAME}: rotation: star prot_is_text: attribute 'prot_d' is not a "
                        "number (a string)",
    }
    for sid, error in errors.items():
        assert (got[sid]["status"], got[sid]["error"]) == ("failed", error)
        assert set(got[sid]) == {"status", "error", "cpu_s"}
    for sid in ("ok1", "ok2", "not_in_rotation", "rotation_note_only"):
        compare(got[sid], expected(stars[sid]), sid)
    assert got["ok1"]["age_gyr"] > 0 and math.isnan(got["not_in_rotation"]["age_gyr"])
    assert (tmp_path / "chunk-0007.parameters.summary.json").read_text() == python_summary(out)
    assert check_chunk(out) == []

    # Without MSAP3 (no --seismology): the catalogue fallback for everyone.
    del paths["seismology"]
    sub = tmp_path / "no_seismology"
    sub.mkdir()
    got = read_stars(run_chunk(msap5, paths, sub))
    assert got["failed_in_seismology"]["status"] == "ok"
    assert got["ok1"]["parameters_method"] == TORRES
