"""Provenance of a run (docs/provenance.md): the Provenance Run RO-Crate of a Toil run and of a
cwltool run, validated offline by roc-validator against provenance-run-crate-0.5; lineage of a
product down to its light curve; the per-step profile (container figures locally, sacct on
Slurm) and its suggestions; verify passing, then failing on one changed byte; the off switch.
Three stars x 5 days, chunks of 2 (two chunks), in the images under make test."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_pipeline_e2e import use_containers

from stellarflow import cli, lineage, profiling, provenance, verify

from conftest import REPO, generate

OBS = "prov"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("prov") / "obs", "--stars", "3", "--days", "5",
                    "--seed", "5", "--observation-id", OBS)


def run(manifest: Path, outdir: Path, *extra: str) -> Path:
    args = ["run", str(manifest), "--outdir", str(outdir), "--chunk-size", "2",
            "--no-progress", *extra]
    if not use_containers():
        args.append("--no-container")
    assert cli.main(args) == 0
    return outdir / OBS


@pytest.fixture(scope="module")
def toil_out(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(manifest, tmp_path_factory.mktemp("prov-toil"))


def validate(crate: Path, profile: str = "provenance-run-crate-0.5") -> str:
    p = subprocess.run([str(REPO / "scripts" / "rocrate-validate"), str(crate), profile],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and f"is a valid {profile}" in p.stdout, p.stdout[-4000:] + p.stderr
    return p.stdout


def graph(crate: Path) -> dict[str, dict]:
    doc = json.loads((crate / provenance.METADATA).read_text())
    return {e["@id"]: e for e in doc["@graph"]}


def types(e: dict) -> list[str]:
    return e["@type"] if isinstance(e["@type"], list) else [e["@type"]]


def test_toil_run_crate(toil_out: Path) -> None:
    validate(toil_out)
    g = graph(toil_out)
    wf = g[g["./"]["mainEntity"]["@id"]]
    packed = toil_out / wf["@id"]
    assert wf["sha256"] == provenance.sha256_file(packed)
    assert json.loads(packed.read_text())["$graph"]  # cwltool --pack
    assert wf["version"]  # the git revision
    engine = next(e for e in g.values() if e.get("name", "").startswith("toil-cwl-runner "))
    assert engine["softwareVersion"] == "9.6.0"
    assert (toil_out / "provenance" / "site-local.yaml").is_file()
    # every product, figure, the catalogue and the report with a SHA-256; light curves too
    outputs = sorted(p.name for p in toil_out.iterdir() if p.is_file() and
                     p.name != provenance.METADATA)
    assert len([n for n in outputs if n.endswith(".product.h5")]) == 3
    # MSAP1's chunk files are delivered too: the products' light curves link into them
    assert [n for n in outputs if n.endswith(".prepared.h5")] == [
        "chunk-0000.prepared.h5", "chunk-0001.prepared.h5"]
    for name in outputs:
        assert g[name]["sha256"] == provenance.sha256_file(toil_out / name), name
    inputs = [e for i, e in g.items() if i.startswith("file://") and "identifier" in e]
    assert sorted(e["identifier"] for e in inputs) == ["star00000", "star00001", "star00002"]
    # one CreateAction per tool run (7 stages x 2 chunks, MSAP3 where it ran, + assembly)
    lines = profiling.load_lines(toil_out)
    tool_runs = [e for e in g.values() if "CreateAction" in types(e) and
                 "SoftwareApplication" in types(g.get(e["instrument"]["@id"], {"@type": []}))
                 and e.get("resourceUsage")]
    assert len(tool_runs) == len(lines) >= 13
    for act in tool_runs:
        assert act["startTime"] <= act["endTime"] and act["object"] and act["result"]
        if use_containers():
            image = g[act["containerImage"]["@id"]]
            assert image["registry"] == "localhost" and len(image["sha256"]) == 64


def test_cwltool_run_crate(manifest: Path, tmp_path: Path) -> None:
    out = run(manifest, tmp_path, "--runner", "cwltool")
    validate(out)
    assert "cwltool" in json.dumps(graph(out)[next(
        i for i, e in graph(out).items() if e.get("@type") == "OrganizeAction")])


def test_lineage_of_a_product(toil_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = lineage.lineage(toil_out / "star00002.product.h5")
    text = json.dumps(tree)
    assert tree["made_by"]["tool"] == "star_products" and tree["star"] == "star00002"
    assert "star00002.h5" in text and "star00000.h5" not in text  # its own light curve only
    # ingest's chunk.json (staged into its folder by CWL) is an input, not a product of it
    def nodes(n: dict):
        yield n
        for u in (n.get("made_by") or {}).get("used", []):
            yield from nodes(u)

    staged = [n for n in nodes(tree) if n["file"] == "chunk.json"]
    assert staged and not any(n.get("made_by") for n in staged), staged
    for tool in ("ingest", "msap1_preparation", "msap4_rotation", "msap5_stellar_parameters",
                 "transit_search"):
        assert f'"tool": "{tool}"' in text, tool
    prepared = lineage.lineage(toil_out / "chunk-0001.prepared.h5")  # made by MSAP1
    assert prepared["made_by"]["tool"] == "msap1_preparation" and "star" not in prepared
    assert any(n["file"] == "chunk-0001.prepared.h5" for n in nodes(tree))  # the product's input
    assert cli.main(["lineage", str(toil_out / "catalogue.ecsv"), "--star", "star00001"]) == 0
    out = capsys.readouterr().out
    assert "made by catalogue" in out and "made by ingest" in out and "star00001.h5" in out
    assert "star00002.h5" not in out  # the other chunk's branch is left out


def test_profile_of_the_run(toil_out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = profiling.load_lines(toil_out)
    assert all(ln["source"] == "container" and ln["used"]["cpu_s"] is not None and
               ln["requested"]["ram_bytes"] and ln["@timestamp"] for ln in lines)
    assert cli.main(["profile", str(toil_out), "--steps"]) == 0
    out = capsys.readouterr().out
    for tool in ("ingest", "msap1_preparation", "msap4_rotation", "star_products", "catalogue"):
        assert f"\n{tool} " in out
    assert cli.main(["profile", str(toil_out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["tools"]) >= {"ingest", "catalogue"}
    assert all(s["suggested"] < s["requested"] for s in doc["suggestions"]
               if s["key"] == "ramMin")  # a few MiB of stars ask for GiB


def test_verify_then_one_changed_byte(toil_out: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / OBS
    shutil.copytree(toil_out, copy)
    assert cli.main(["verify", str(copy)]) == 0
    product = copy / "star00001.product.h5"
    data = bytearray(product.read_bytes())
    data[len(data) // 2] ^= 0xFF
    product.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli.main(["verify", str(copy)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "star00001.product.h5: SHA-256 differs" in err[0]
    product.unlink()
    assert verify.verify(copy)[1].endswith("missing (crate entity star00001.product.h5)")
    assert cli.main(["verify", str(tmp_path)]) == 2  # no crate there


def test_off_switch(toil_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(provenance.ENV_SWITCH, "0")
    info = provenance.RunInfo(observation_id=OBS, workflow="sas", cwl=REPO / "cwl" / "workflows"
                              / "sas.cwl", runner="toil", site="local", container=False,
                              run_dir=tmp_path, outdir=tmp_path, started="", ended="", job={})
    assert provenance.record_run(info) is None and not list(tmp_path.iterdir())


def test_sacct_matching_and_suggestions() -> None:
    steps = [{"module": "msap4_rotation", "start_utc": "2026-01-01T10:00:01.5Z",
              "end_utc": "2026-01-01T10:00:03.2Z"}]
    jobs = [{"job_id": "7", "name": "toil_job_3_sas_chunk.ingest.ingest",
             "start": "2026-01-01T10:00:00+00:00", "end": "2026-01-01T10:00:09+00:00"},
            {"job_id": "8", "name": "toil_job_4_sas_chunk.msap4.msap4_rotation",
             "start": "2026-01-01T10:00:01+00:00", "end": "2026-01-01T10:00:04+00:00"}]
    assert profiling.match_sacct(steps, jobs)[0]["job_id"] == "8"
    # two chunks of one tool at once: each step gets its own job, each job one step
    two = [{"module": "transit_search", "start_utc": f"2026-01-01T10:00:{s}Z",
            "end_utc": f"2026-01-01T10:00:{e}Z"} for s, e in (("06.0", "11.0"), ("05.8", "11.6"))]
    tjobs = [{"job_id": j, "name": f"toil_job_{j}_sas_chunk.transit_search", "start": st,
              "end": en} for j, st, en in (("20", "2026-01-01T10:00:05+00:00",
                                            "2026-01-01T10:00:12+00:00"),
                                           ("21", "2026-01-01T10:00:04+00:00",
                                            "2026-01-01T10:00:20+00:00"))]
    got = profiling.match_sacct(two, tjobs)
    assert sorted(j["job_id"] for j in got.values()) == ["20", "21"]
    lines = [{"tool": "t", "source": "container",
              "requested": {"cores": 1, "ram_bytes": 2**30, "time_limit_s": None},
              "used": {"wall_s": 10.0, "cpu_s": 9.0, "max_rss_bytes": 100 * 2**20}}] * 20
    advice = profiling.suggest(profiling.per_tool(lines))
    assert [(a["key"], a["requested"], a["suggested"]) for a in advice] == [("ramMin", 1024, 128)]


@pytest.mark.slurm
def test_slurm_run_profile_from_sacct(manifest: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler_support import cluster_up

    cluster_up("slurm-cluster")
    out = run(manifest, tmp_path, "--site", "slurm")
    validate(out)
    lines = profiling.load_lines(out)
    odd = [(ln["tool"], ln["source"], ln.get("slurm", {}).get("state")) for ln in lines
           if ln["source"] != "slurm" or ln["slurm"]["state"] != "COMPLETED"]
    assert lines and not odd, odd
    assert all(ln["slurm"]["name"].endswith(ln["tool"]) for ln in lines)
    assert cli.main(["profile", str(out), "--sacct"]) == 0
    text = capsys.readouterr().out
    assert "sacct rows used" in text and "toil_job_" in text and "slurm" in text


def test_failed_run_crate(manifest: Path, tmp_path: Path) -> None:
    """A run that fails keeps a Workflow Run Crate in its run folder: what ran and why not."""
    from stellarflow import run as run_mod
    from stellarflow.errors import RunError

    with pytest.raises(RunError, match="unrecognized arguments"):
        run_mod.run_manifest(manifest, tmp_path, runner="cwltool", container=False,
                             extra_args=["--no-such-option"])
    crate = next((tmp_path / ".stellarflow" / "runs").glob("*/crate"))
    validate(crate, "workflow-run-crate-0.5")
    run = next(e for e in graph(crate).values() if e.get("name", "").startswith("Run of sas"))
    assert run["actionStatus"]["@id"].endswith("FailedActionStatus")
    assert "--no-such-option" in run["error"]
