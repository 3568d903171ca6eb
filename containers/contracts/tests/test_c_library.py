"""The contracts library's C part (containers/contracts/c) against its Python part: the same
version, the same chunk files, the same summary bytes, the same command line.

A probe module is compiled with the library and run next to the same module written on
stellarflow_contracts.chunk; skipped where this host has no C compiler or libhdf5-dev.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

import stellarflow_contracts
from stellarflow_contracts import chunk
from stellarflow_contracts.errors import InputError

C_DIR = Path(__file__).resolve().parents[1] / "c"

PROBE = r"""
#include <stdlib.h>
#include <string.h>
#include "sf_contracts.h"

static const sf_input INPUTS[] = {{"prepared", "prepared chunk file", 1},
                                  {"extra", "another chunk file (optional)", 0}};

static sf_star_rc process(sf_star *s, void *user) {
    (void)user;
    double teff = sf_star_number(s, 0, "teff", 1);
    if (s->message) return SF_STAR_FAILED;
    if (strncmp(s->id, "nm", 2) == 0) return sf_not_measurable(s, "too short");
    double *flux = NULL;
    size_t n = 0;
    char why[200] = "";
    sf_attr_rc rc = sf_read_doubles(s->in[0], "lc/flux", &flux, &n, why, sizeof why);
    if (rc == SF_ATTR_OK) {
        sf_put_int(s->out, "n_flux", (int64_t)n);
        sf_put_double(s->out, "flux_last", flux[n - 1]);
        free(flux);
    } else if (rc != SF_ATTR_MISSING) {
        return sf_fail(s, "lc/flux: %s", why);
    }
    static double freq[5000];
    for (int i = 0; i < 5000; i++) freq[i] = i * 0.5;
    sf_put_doubles(s->out, "psd/frequency_uhz", freq, 5000, "uHz");
    sf_put_doubles(s->out, "small", freq, 3, "");
    if (strcmp(s->id, "bad") == 0) return sf_fail(s, "star bad: no  flux\n here");
    if (strcmp(s->id, "silent") == 0) return SF_STAR_FAILED;
    sf_put_int(s->out, "n_points", (int64_t)strlen(s->id));
    sf_put_double(s->out, "teff_twice", 2 * teff);
    sf_put_string(s->out, "label", "ok \u00fc");
    return SF_STAR_OK;
}

static void finish(hid_t out, void *user) {
    (void)user;
    sf_put_int(out, "n_done", 42);
}

static const sf_module MODULE = {"sf_probe", "0.3.0", "probe", "Probe: the library's behaviour",
                                 INPUTS, 2, 0, process, finish, NULL};

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "summarise") == 0)
        return sf_write_summary(argv[2], argv[3]) == 0 ? 0 : 1;
    return sf_module_main(&MODULE, argc, argv);
}
"""


def py_process(ctx: chunk.StarContext) -> None:
    """What PROBE's process does, on the Python library."""
    g = ctx.need("prepared")
    if "teff" not in g.attrs:
        raise InputError(None, f"prepared: star {ctx.star_id}: missing attribute 'teff'")
    teff = float(g.attrs["teff"])
    if ctx.star_id.startswith("nm"):
        raise chunk.NotMeasurable("too short")
    if "lc/flux" in g:
        flux = g["lc/flux"][()]
        ctx.out.attrs["n_flux"] = flux.size
        ctx.out.attrs["flux_last"] = float(flux[-1])
    freq = np.arange(5000) * 0.5
    chunk.write_dataset(ctx.out, "psd/frequency_uhz", freq, "uHz")
    chunk.write_dataset(ctx.out, "small", freq[:3], "")
    if ctx.star_id == "bad":
        raise InputError(None, "star bad: no  flux\n here")
    ctx.out.attrs["n_points"] = len(ctx.star_id)
    ctx.out.attrs["teff_twice"] = 2 * teff
    ctx.out.attrs["label"] = "ok \u00fc"


def py_finish(fout: h5py.File) -> None:
    fout.attrs["n_done"] = 42


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    hdf5, lzf = Path("/usr/include/hdf5/serial"), Path("/usr/include/liblzf")
    if not cc or not (hdf5 / "hdf5.h").exists() or not (lzf / "lzf.h").exists():
        pytest.skip("no C compiler, libhdf5-dev or liblzf-dev (Debian's paths)")
    d = tmp_path_factory.mktemp("sf_probe")
    (d / "probe.c").write_text(PROBE)
    exe = d / "sf_probe"
    r = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-O2", f"-I{C_DIR}", f"-I{hdf5}",
                        f"-I{lzf}", "-o", str(exe), str(d / "probe.c"),
                        *map(str, sorted(C_DIR.glob("*.c"))),
                        "-L/usr/lib/x86_64-linux-gnu/hdf5/serial", "-lhdf5", "-llzf", "-lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    return exe


def test_version_agrees_with_python() -> None:
    header = (C_DIR / "sf_contracts.h").read_text()
    version = re.search(r'#define SF_CONTRACTS_VERSION "([^"]+)"', header).group(1)
    major = int(re.search(r"#define SF_CONTRACTS_MAJOR (\d+)", header).group(1))
    assert (version, major) == (stellarflow_contracts.__version__,
                                stellarflow_contracts.CONTRACT_MAJOR)


def write_chunk(path: Path, stars: dict[str, dict], chunk_id: str = "chunk-0003") -> Path:
    with h5py.File(path, "w") as f:
        f.attrs.update({"chunk_id": chunk_id, "observation_id": "obs-c", "stage": "prepared",
                        "contracts_version": "1.2.0"})
        f.attrs["star_ids"] = np.array(list(stars), dtype=h5py.string_dtype())
        for sid, attrs in stars.items():
            if attrs is None:
                continue
            g = f.create_group(f"stars/{sid}")
            flux = attrs.pop("flux", None)
            g.attrs.update({"status": "ok", "error": "", "cpu_s": 0.1, **attrs})
            if flux is not None:  # as the Python modules write it: lzf when large
                chunk.write_dataset(g, "lc/flux", flux, "")
    return path


STARS = {
    "star1": {"teff": 5800.0, "flux": np.linspace(0.9, 1.1, 9999)},
    "star22": {"teff": np.int32(4000), "flux": np.arange(3.0)}, "nm1": {"teff": 6000.0},
    "bad": {"teff": 5000.0}, "no_teff": {},
    "up": {"status": "failed", "error": "msap1_preparation: too few\tpoints"},
    "up_extra": {"teff": 5000.0},
}


def test_same_chunk_and_summary_as_python(probe: Path, tmp_path: Path) -> None:
    prepared = write_chunk(tmp_path / "chunk-0003.prepared.h5", {k: dict(v) for k, v in
                                                                  STARS.items()})
    with h5py.File(prepared) as f:
        assert f["stars/star1/lc/flux"].compression == "lzf"
    extra = write_chunk(tmp_path / "chunk-0003.extra.h5",
                        {"up_extra": {"status": "failed", "error": "x: upstream"}, "star1": {}})
    c_out, py_out = tmp_path / "c", tmp_path / "py"
    c_out.mkdir()
    py_out.mkdir()
    r = subprocess.run([str(probe), "--prepared", str(prepared), "--extra", str(extra),
                        "--outdir", str(c_out)], capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    chunk.run_chunk(module="sf_probe", version="0.3.0", stage="probe",
                    inputs={"prepared": prepared, "extra": extra}, primary="prepared",
                    outdir=py_out, process=py_process, finish=py_finish)
    name = "chunk-0003.probe"
    assert (c_out / f"{name}.summary.json").read_bytes() == \
        (py_out / f"{name}.summary.json").read_bytes()
    # The step profile: the Python record's keys (sf_profile.c), its inputs and outputs.
    rec = json.loads((c_out / f"{name}.profile.json").read_text())
    from test_profile import KEYS

    assert set(rec) == KEYS and rec["exit_status"] == 0 and rec["module"] == "sf_probe"
    assert [i["option"] for i in rec["inputs"]] == ["prepared", "extra"]
    assert [o["name"] for o in rec["outputs"]] == [f"{name}.h5", f"{name}.summary.json"]
    assert rec["cpu_s"] >= 0 and rec["max_rss_bytes"] > 0 and rec["wall_s"] >= 0

    def content(path: Path) -> dict:
        out: dict = {}
        with h5py.File(path) as f:
            def visit(name: str, obj: object) -> None:
                if isinstance(obj, h5py.Dataset):
                    out[name] = (obj.dtype.str, obj.shape, obj[()].tolist())
                attrs = {k: (obj.attrs.get_id(k).dtype.str, np.asarray(v).tolist())
                         for k, v in obj.attrs.items()
                         if k not in ("cpu_s", "created_utc", "host", "runtime")}
                out[f"{name}@attrs"] = attrs
            visit("/", f)
            f.visititems(visit)
            for sid in f["stars"]:
                g = f["stars"][sid]
                assert isinstance(g.attrs["cpu_s"], np.float64)
                if sid in ("up", "up_extra"):
                    assert g.attrs["cpu_s"] == 0.0
        return out

    c, py = content(c_out / f"{name}.h5"), content(py_out / f"{name}.h5")
    assert c == py
    stars = {k[len("stars/"):-len("@attrs")]: v for k, v in c.items()
             if re.fullmatch(r"stars/[^/]+@attrs", k)}
    assert stars["up"]["error"][1] == "msap1_preparation: too few\tpoints"  # carried unchanged
    assert stars["up_extra"]["error"][1] == "x: upstream"
    assert stars["bad"]["error"][1] == "sf_probe: star bad: no flux here"
    assert stars["no_teff"]["error"][1] == "sf_probe: prepared: star no_teff: missing attribute " \
                                           "'teff'"
    assert stars["nm1"]["note"][1] == "sf_probe: too short"
    assert stars["star22"]["n_points"] == ("<i8", 6)
    assert stars["star1"]["n_flux"] == ("<i8", 9999)  # read through h5py's lzf filter
    assert stars["star1"]["flux_last"] == ("<f8", 1.1)
    with h5py.File(c_out / f"{name}.h5") as f:
        assert f.attrs["contracts_version"] == stellarflow_contracts.__version__
        assert set(chunk.provenance("m", "v")) <= set(f.attrs)
        assert re.fullmatch(r"C \((gcc|clang) .+\); HDF5 1\.\d+\.\d+", f.attrs["runtime"])
        assert f["stars/star1/psd/frequency_uhz"].compression == "gzip"  # > 4096 values
        assert list(f["stars/bad"]) == []  # what a failed star wrote is removed


def test_c_only_messages(probe: Path, tmp_path: Path) -> None:
    """Where the C side has its own words: a number attr that is not one, no message."""
    prepared = write_chunk(tmp_path / "in.h5", {"silent": {"teff": 1.0},
                                                "teff_text": {"teff": "hot"}})
    r = subprocess.run([str(probe), "--prepared", str(prepared), "--outdir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "chunk-0003.probe.h5") as f:
        errors = {sid: (g.attrs["status"], g.attrs["error"]) for sid, g in f["stars"].items()}
    assert errors == {
        "silent": ("failed", "sf_probe: failed (no message)"),
        "teff_text": ("failed", "sf_probe: prepared: star teff_text: attribute 'teff' is not a "
                                "number (a string)")}


def test_summary_of_any_attrs(probe: Path, tmp_path: Path) -> None:
    """The summary writer on attrs and datasets of every kind h5py writes."""
    path = tmp_path / "any.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"chunk_id": "c\u00e9", "stage": "s", "module": 'm"q', "module_version": 1})
        f.attrs["star_ids"] = np.array(["a", "b\tc", "d", "e"], dtype=h5py.string_dtype())
        a = f.create_group("stars/a").attrs
        a["status"], a["cpu_s"], a["error"] = "ok", 3.0, ""
        a["f32"] = np.float32(0.1)
        a["i8"] = np.int8(-5)
        a["u64"] = np.uint64(2**64 - 1)
        a["bool"] = True
        a["bools"] = np.array([True, False])
        a["ints"] = np.array([1, 2, 3], dtype=np.int16)
        a["floats"] = np.array([1.23456, np.nan, np.inf, -0.0, 1e-7, 1e22, 123456789.0])
        a["empty"] = np.array([], dtype=np.float64)
        a["fixed"] = np.bytes_(b"fixed\x00")
        a["strs"] = np.array(["x", "\u00fc\n"], dtype=h5py.string_dtype())
        a["matrix"] = np.array([[1.5, np.nan], [2.0, 3.0]])
        a["imatrix"] = np.arange(8).reshape(2, 2, 2)
        a.create("enum", 1, dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1"))
        a["huge"] = 1.7977e308
        a["ctrl"] = "a\x01b\x7f\u2028\"\\"
        g = f["stars/a"]
        g.create_dataset("z/deep/x", data=np.zeros((3, 4)))
        g.create_dataset("scalar", data=1.0)
        g.create_dataset("b", data=np.zeros(2))
        for sid, status in (("b\tc", "failed"), ("d", "odd"), ("e", None)):
            grp = f.create_group(f"stars/{sid}")
            if status:
                grp.attrs["status"] = status
            grp.attrs["error"] = "boom" if status == "failed" else ""
    out = tmp_path / "any.json"
    r = subprocess.run([str(probe), "summarise", str(path), str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(path) as f:
        want = json.dumps(chunk.summarise(f), indent=1, ensure_ascii=False) + "\n"
    assert out.read_text() == want


def python_parser() -> chunk.OneLineParser:
    """module_main's parser for PROBE's inputs."""
    p = chunk.OneLineParser(prog="sf_probe", description="Probe: the library's behaviour")
    p.add_argument("--version", action="version", version="sf_probe 0.3.0")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--outdir", type=Path, default=Path("."), help="where to write outputs")
    p.add_argument("--prepared", type=Path, required=True, help="prepared chunk file")
    p.add_argument("--extra", type=Path, help="another chunk file (optional)")
    return p


@pytest.mark.parametrize("argv", [
    [], ["--extra", "x"], ["--prepared"], ["--prepared", "a", "b", "c"], ["--debug=1"],
    ["--prepared", "a", "--e"], ["--prep", "a", "--nope"], ["--prepared=a", "--outdir"],
])
def test_command_line_as_argparse(probe: Path, tmp_path: Path, argv: list[str],
                                  capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    with pytest.raises(SystemExit) as exc:
        python_parser().parse_args(argv)
    want = capsys.readouterr()
    r = subprocess.run([str(probe), *argv], capture_output=True, text=True, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (exc.value.code, want.out, want.err)


def test_help_and_version_as_argparse(probe: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    for flag in ("--help", "--version", "-h"):
        with pytest.raises(SystemExit):
            python_parser().parse_args([flag])
        want = capsys.readouterr().out
        r = subprocess.run([str(probe), flag], capture_output=True, text=True)
        assert (r.returncode, r.stdout, r.stderr) == (0, want, ""), flag


def test_bad_inputs_one_line(probe: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.attrs["x"] = 1
    v2 = write_chunk(tmp_path / "v2.h5", {"s": {"teff": 1.0}})
    with h5py.File(v2, "a") as f:
        f.attrs["contracts_version"] = "2.0.0"
    for path, what in ((tmp_path / "none.h5", "unreadable chunk HDF5 (No such file or directory)"),
                       (tmp_path, "unreadable chunk HDF5 (a directory)"),
                       (plain, "not a stellarflow chunk file (no /stars or chunk_id)"),
                       (v2, "written with contracts 2.0.0, this module reads 1.x")):
        r = subprocess.run([str(probe), "--prepared", str(path), "--outdir", str(tmp_path)],
                           capture_output=True, text=True)
        assert (r.returncode, r.stderr) == (2, f"sf_probe: {path}: {what}\n")
    good = write_chunk(tmp_path / "good.h5", {"s": {"teff": 1.0}})
    r = subprocess.run([str(probe), "--prepared", str(good), "--outdir", str(plain)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot write" in r.stderr
