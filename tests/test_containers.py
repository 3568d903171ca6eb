"""Container images: CWL <-> built images, labels, each image holding exactly its module's lock
(and no host code), images that really differ, rebuilds limited to the changed module, no network
in a step, clear errors for a missing image or a failing build, the podman wrapper and runtime
set-up, digest pinning, and (slow) the export/import round trip.

Tests needing podman skip with the reason when it is unusable; those needing the images skip
when they are not built (`make test` builds them first).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from stellarflow import images

from conftest import REPO, VENV_BIN, generate, runner_env

pytestmark = pytest.mark.containers

BUILD_IMAGES = REPO / "scripts" / "build-images"
SETUP_PODMAN = REPO / "scripts" / "setup-podman"
WRAPPER = REPO / "scripts" / "bin" / "podman"
CONTAINERS = REPO / "containers"
# Any Python module's image serves the generic container tests (python3 is in it).
PROBE_IMAGE = images.module_image(CONTAINERS / "ingest")


def module_version(name: str) -> str:
    return images.read_module(CONTAINERS / name)["version"]


def load_build_images():
    loader = importlib.machinery.SourceFileLoader("build_images", str(BUILD_IMAGES))
    spec = importlib.util.spec_from_loader("build_images", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def repo_cwl_files() -> list[Path]:
    return sorted(REPO.glob("cwl/**/*.cwl")) + sorted(REPO.glob("dummy_pipeline/**/*.cwl"))


@pytest.fixture(scope="module")
def podman_ok() -> str:
    ok, why = images.podman_usable()
    if not ok:
        pytest.skip(why)
    return shutil.which("podman", path=runner_env()["PATH"])


@pytest.fixture(scope="module")
def built(podman_ok: str) -> list[str]:
    refs = images.built_images(REPO)
    missing = images.missing_images(refs)
    if missing:
        pytest.skip(f"images not built ({', '.join(missing)}): run `make images`")
    return refs


def inspect(ref: str) -> dict:
    r = subprocess.run(["podman", "image", "inspect", ref], capture_output=True, text=True,
                       check=True, env=runner_env())
    return json.loads(r.stdout)[0]


def cwltool(tool: Path, job: dict, outdir: Path, *extra: str) -> subprocess.CompletedProcess:
    job_file = outdir.parent / f"{outdir.name}.job.json"
    job_file.write_text(json.dumps(job))
    return subprocess.run(
        [str(VENV_BIN / "cwltool"), "--quiet", "--podman", "--outdir", str(outdir),
         "--tmpdir-prefix", str(outdir.parent / "tmp") + "/", *extra, str(tool), str(job_file)],
        capture_output=True, text=True, env=runner_env(), timeout=600,
    )


# ------------------------------------------------------------------ CWL <-> images


def test_every_cwl_image_is_built_and_every_image_is_used() -> None:
    files = repo_cwl_files()
    assert any(f.parts[-2] == "tools" for f in files), "no CWL tools found under cwl/tools"
    used = images.cwl_images(files, follow_runs=False)
    names = {ref for ref in used if not ref.startswith("sha256:")}  # pins: dockerImageId
    built = set(images.built_images(REPO))
    for ref in names:
        name = ref.removeprefix(images.PREFIX).split(":")[0]
        assert ref.startswith(images.PREFIX) and (CONTAINERS / name / "module.yml").exists() \
            and ref.endswith(f":{module_version(name)}"), (
            f"{ref} (in {used[ref][0].relative_to(REPO)}) is not localhost/stellarflow/<module>:"
            "<the version in its module.yml>")
    not_built = {r: [str(p.relative_to(REPO)) for p in used[r][:2]] for r in names - built}
    assert not not_built, f"CWL names images `make images` does not build: {not_built}"
    assert not built - names, f"`make images` builds images no CWL uses: {built - names}"


def test_sas_workflow_needs_one_image_per_science_tool() -> None:
    used = images.cwl_images([REPO / "cwl" / "workflows" / "sas.cwl"])
    assert len(used) >= 8
    # Each tool names exactly one image, and no two science tools share one.
    tools = [p.name for files in used.values() for p in files]
    assert len(tools) == len(set(tools))


# ------------------------------------------------------------------ what the images carry


def test_images_carry_oci_labels_and_record_their_name(built: list[str]) -> None:
    for ref in built:
        info = inspect(ref)
        labels = info["Labels"] or {}
        name = ref.removeprefix(images.PREFIX).split(":")[0]
        for key in images.OCI_LABELS:
            assert labels.get(key), f"{ref}: label {key} missing"
        assert labels["org.opencontainers.image.title"] == f"stellarflow/{name}"
        assert labels["org.opencontainers.image.version"] == module_version(name)
        assert labels["io.stellarflow.module"] == name
        assert len(labels.get(images.HASH_LABEL, "")) == 24, f"{ref}: no content-hash label"
        env = dict(e.split("=", 1) for e in info["Config"]["Env"])
        assert env["STELLARFLOW_IMAGE"] == ref
        assert env["STELLARFLOW_IMAGE_HASH"] == labels[images.HASH_LABEL]


FREEZE = ("import json, importlib.metadata as m; print(json.dumps(sorted("
          "(d.metadata['Name'].lower().replace('_', '-'), d.version) for d in m.distributions())))")


def python_modules() -> list[str]:
    return [d.name for d in images.module_dirs() if images.read_module(d)["language"] == "python"]


@pytest.mark.parametrize("name", python_modules())
def test_python_image_holds_exactly_its_module_lock_and_no_host_code(built: list[str],
                                                                     name: str) -> None:
    r = subprocess.run(["podman", "run", "--rm", "--net=none", images.module_image(
        CONTAINERS / name), "python", "-c", FREEZE], capture_output=True, text=True,
        env=runner_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    in_image = {n: v for n, v in json.loads(r.stdout) if n not in ("pip", "setuptools")}
    lock = {}
    for line in (CONTAINERS / name / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            n, v = line.split("==")
            lock[n.lower().replace("_", "-").replace(".", "-")] = v
    lock[name.replace("_", "-")] = module_version(name)  # the module itself
    in_image = {n.replace(".", "-"): v for n, v in in_image.items()}
    assert in_image == lock
    # Host-side code never ships inside a science image.
    for host in ("stellarflow", "stellarflow_trigger", "stellarflow_dummy", "toil", "cwltool",
                 "toil_batch_system_stellarflow"):
        assert host.replace("_", "-") not in in_image


def test_python_modules_on_the_project_lock_pin_the_venv_versions() -> None:
    """A module that follows the project's lock gives the same numbers in its image and in the
    venv (the same versions); one with its own pins (project_lock: false) may differ."""
    from importlib import metadata

    for name in python_modules():
        if not images.read_module(CONTAINERS / name).get("project_lock", True):
            continue
        for line in (CONTAINERS / name / "requirements.lock").read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                dist, version = line.split("==")
                assert metadata.version(dist) == version, f"{name}: {dist}"


def test_images_really_differ(built: list[str]) -> None:
    """Each image has its own stack: the fake module runs numpy 1.26 beside numpy-2 science."""
    code = "import numpy; print(numpy.__version__)"
    seen = {}
    for name in ("fake_module", "msap3_seismology"):
        r = subprocess.run(["podman", "run", "--rm", "--net=none", images.module_image(
            CONTAINERS / name), "python", "-c", code], capture_output=True, text=True,
            env=runner_env(), timeout=120)
        assert r.returncode == 0, r.stderr
        seen[name] = r.stdout.strip()
    assert seen["fake_module"].startswith("1.26."), seen
    assert seen["msap3_seismology"].startswith("2."), seen
    # The C module's image has no Python stack at all.
    c_image = images.module_image(CONTAINERS / "msap5_stellar_parameters")
    r = subprocess.run(["podman", "run", "--rm", "--net=none", c_image, "sh", "-c",
                        "command -v python3 || echo none"], capture_output=True, text=True,
                       env=runner_env(), timeout=120)
    assert r.stdout.strip() == "none", r.stdout


def test_changing_one_module_rebuilds_that_module_only(built: list[str], tmp_path: Path) -> None:
    """build-images' decision, on a copy of containers/ with one module's code changed."""
    def plan(containers: Path) -> dict[str, str]:
        r = subprocess.run([sys.executable, str(BUILD_IMAGES), "--plan", "--containers-dir",
                            str(containers)], capture_output=True, text=True, env=runner_env(),
                           timeout=300, check=True)
        return {ln.split()[0]: ln.split(None, 1)[1].strip() for ln in r.stdout.splitlines()}

    here = plan(CONTAINERS)
    if set(here.values()) != {"up to date"}:
        pytest.skip(f"images older than the code: run `make images` ({here})")
    copy = tmp_path / "containers"
    shutil.copytree(CONTAINERS, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", "dist"))
    code = copy / "msap4_rotation" / "msap4_rotation" / "__init__.py"
    code.write_text(code.read_text() + "\n# a change to this module's code\n")
    changed = plan(copy)
    ref = images.module_image(CONTAINERS / "msap4_rotation")
    assert changed.pop(ref) == "would build"
    assert set(changed.values()) == {"up to date"}, changed
    # A change to a module's tests does not go into its image.
    (copy / "msap3_seismology" / "tests" / "test_x.py").write_text("# a new test\n")
    assert plan(copy)[images.module_image(CONTAINERS / "msap3_seismology")] == "up to date"


# ------------------------------------------------------------------ a step runs in its image


def test_cwltool_runs_a_step_in_its_own_image(built: list[str], tmp_path: Path) -> None:
    manifest = generate(tmp_path / "obs", "--stars", "2", "--days", "5", "--seed", "5",
                        "--observation-id", "img")
    lcs = sorted((manifest.parent / "lightcurves").glob("*.h5"))
    job = {
        "observation_id": "img",
        "chunk": {"chunk_id": "chunk-0000", "stars": [
            {"star_id": p.stem, "lightcurve": {"class": "File", "path": str(p)}} for p in lcs]},
    }
    out = tmp_path / "out"
    r = cwltool(REPO / "cwl" / "tools" / "ingest.cwl", job, out)
    assert r.returncode == 0, r.stderr[-2000:]
    (h5,) = out.glob("*.lightcurves.h5")
    with h5py.File(h5) as f:
        image = f.attrs["image"]
        image = image.decode() if isinstance(image, bytes) else str(image)
        assert image == images.module_image(CONTAINERS / "ingest")
        digest = f.attrs.get("image_digest", b"")
        digest = digest.decode() if isinstance(digest, bytes) else str(digest)
    assert digest == inspect(image)["Labels"][images.HASH_LABEL]


# ------------------------------------------------------------------ no network in a step

PROBE = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
def tcp(addr):
    try:
        socket.create_connection(addr, timeout=5).close()
        return "connected"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
def dns(name):
    try:
        return socket.gethostbyname(name)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
ifaces = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
print(json.dumps({"interfaces": ifaces, "host": tcp((host, port)), "dns": dns("pypi.org")}))
"""

PROBE_TOOL = """\
cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement: {{dockerPull: {image}}}
  NetworkAccess: {{networkAccess: $(inputs.network)}}
baseCommand: [python, -c, {probe}]
inputs:
  host: {{type: string, inputBinding: {{position: 1}}}}
  port: {{type: int, inputBinding: {{position: 2}}}}
  network: boolean
stdout: probe.json
outputs:
  probe: stdout
"""


@pytest.fixture(scope="module")
def host_server():
    """A TCP server on every host address; yields the host's own non-loopback address, port."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the source address
        host_ip = probe.getsockname()[0]
    except OSError:
        pytest.skip("no non-loopback IPv4 address on this host")
    finally:
        probe.close()
    srv = socket.create_server(("0.0.0.0", 0))
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # The server is reachable from the host itself, so a failure below is the container's.
    socket.create_connection((host_ip, port), timeout=5).close()
    yield host_ip, port
    stop.set()
    t.join()
    srv.close()


def run_probe(tmp_path: Path, host_ip: str, port: int, network: bool) -> dict:
    tool = tmp_path / "probe.cwl"
    tool.write_text(PROBE_TOOL.format(image=PROBE_IMAGE, probe=json.dumps(PROBE)))
    out = tmp_path / ("out-net" if network else "out-nonet")
    r = cwltool(tool, {"host": host_ip, "port": port, "network": network}, out)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads((out / "probe.json").read_text())


def test_step_without_network_access_cannot_reach_the_network(
        built: list[str], host_server: tuple[str, int], tmp_path: Path) -> None:
    host_ip, port = host_server
    res = run_probe(tmp_path, host_ip, port, network=False)
    # CWL's default (no NetworkAccess): cwltool/Toil run podman with --net=none, so the step's
    # only interface is its own loopback; the host's server and name resolution are unreachable.
    assert res["interfaces"] == ["lo"], res
    assert res["host"] != "connected", res
    assert "unreachable" in res["host"].lower(), res
    assert not res["dns"][0].isdigit(), res


def test_same_step_with_network_access_reaches_the_host(
        built: list[str], host_server: tuple[str, int], tmp_path: Path) -> None:
    """Control for the test above: same image, tool and server, only NetworkAccess differs."""
    host_ip, port = host_server
    res = run_probe(tmp_path, host_ip, port, network=True)
    if res["host"] != "connected" and len(res["interfaces"]) == 1:
        pytest.skip(f"podman's default network does not work here: {res}")
    assert res["host"] == "connected", res
    assert len(res["interfaces"]) > 1


# ------------------------------------------------------------------ bad input / failure


def test_missing_image_is_one_line_naming_it_and_make_images(podman_ok: str,
                                                               tmp_path: Path) -> None:
    tool = tmp_path / "ghost.cwl"
    tool.write_text(PROBE_TOOL.format(image="localhost/stellarflow/no_such_module:1.0.0",
                                      probe=json.dumps("pass")))
    msg = images.missing_images_error(tool)
    assert msg and "\n" not in msg
    assert "localhost/stellarflow/no_such_module:1.0.0" in msg and "make images" in msg
    r = subprocess.run([sys.executable, "-m", "stellarflow.images", "check", str(tool)],
                       capture_output=True, text=True, env=runner_env())
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_module" in lines[0] and "make images" in lines[0]


def test_failing_build_names_the_module_and_the_containerfile_line(built: list[str],
                                                                    tmp_path: Path) -> None:
    cdir = tmp_path / "containers"
    (cdir / "broken").mkdir(parents=True)
    (cdir / "broken" / "module.yml").write_text(
        "name: broken\nversion: 0.0.1\nlanguage: c\ndescription: a module whose code is "
        "missing\ndebian: {run: [python3, python3-venv]}\n")  # the rootfs the modules use
    (cdir / "broken" / "Containerfile").write_text(
        "# a module image whose code is missing\n"
        "ARG RUN_ROOTFS\n"
        "FROM ${RUN_ROOTFS}\n"
        "ENV STELLARFLOW_MODULE=broken\n"
        'RUN python3 -c "import no_such_module"\n'
    )
    r = subprocess.run([sys.executable, str(BUILD_IMAGES), "--no-setup", "--containers-dir",
                        str(cdir), "broken"], capture_output=True, text=True, env=runner_env(),
                       timeout=1200)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("build-images: broken: build failed at "), last
    assert "broken/Containerfile:5: RUN python3 -c" in last, last
    assert not images.image_exists("localhost/stellarflow/broken:0.0.1")


# ------------------------------------------------------------------ runtime set-up


def real_podman() -> str | None:
    from stellarflow import sites

    return sites.real_podman(os.environ["PATH"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the wrapper only changes anything for root")
def test_wrapper_drops_keep_id_for_rootful_podman_only_before_the_image(built: list[str]) -> None:
    podman = real_podman()
    assert podman
    cmd = ["run", "--rm", "--net=none", "--userns=keep-id", PROBE_IMAGE,
           "python", "-c", "import sys; print(sys.argv[1:])", "--userns=keep-id"]
    plain = subprocess.run([podman, *cmd], capture_output=True, text=True, timeout=120)
    assert plain.returncode != 0 and "keep-id" in plain.stderr  # why the wrapper exists
    wrapped = subprocess.run([str(WRAPPER), *cmd], capture_output=True, text=True, timeout=120)
    assert wrapped.returncode == 0, wrapped.stderr
    assert wrapped.stdout.strip() == "['--userns=keep-id']"  # the command's own args untouched


def test_runner_env_names_the_real_podman_for_the_wrapper() -> None:
    from stellarflow import sites

    env = sites.runner_path_env()
    real = env.get(sites.REAL_PODMAN_ENV)
    assert real and Path(real).is_file()
    assert b"stellarflow-podman-wrapper" not in Path(real).read_bytes()[:4096]


def test_wrapper_ends_stats_of_one_container_with_the_container(built: list[str],
                                                                tmp_path: Path) -> None:
    """cwltool's memory monitor: `podman stats --format {{.MemPerc}} ID` streams samples while
    the container runs and, through the wrapper, ends when the container has ended."""
    cid = tmp_path / "c.cid"
    run = subprocess.Popen([str(WRAPPER), "run", "--rm", "--net=none", f"--cidfile={cid}",
                            PROBE_IMAGE, "sleep", "4"])
    try:
        deadline = time.monotonic() + 60
        while not (cid.exists() and cid.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = subprocess.Popen([str(WRAPPER), "stats", "--format", "{{.MemPerc}}",
                                  cid.read_text().strip()], stdout=subprocess.PIPE, text=True)
        assert run.wait(timeout=60) == 0
        ended = time.monotonic()
        out, _ = stats.communicate(timeout=30)
        assert time.monotonic() - ended < 3.0  # podman's own stats goes on for its 5 s interval
        assert stats.returncode == 0
        assert re.search(r"\d+(\.\d+)?%", out), out  # it did sample the running container
    finally:
        if run.poll() is None:
            run.kill()


@pytest.mark.skipif(os.geteuid() != 0, reason="setup-podman only writes system files as root")
def test_setup_podman_writes_only_absent_or_own_files(tmp_path: Path) -> None:
    conf, dest = tmp_path / "containers.conf", tmp_path / "bin" / "podman"
    dest.parent.mkdir()
    env = dict(os.environ, STELLARFLOW_CONTAINERS_CONF=str(conf),
               STELLARFLOW_WRAPPER_DEST=str(dest))

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([str(SETUP_PODMAN)], capture_output=True, text=True, env=env,
                              check=True)

    first = run()
    text = conf.read_text()
    assert "stellarflow-managed" in text and 'runtime = "runc"' in text
    assert '"nofile=20000:20000", "nproc=32768:32768"' in text
    assert dest.read_bytes() == WRAPPER.read_bytes() and os.access(dest, os.X_OK)
    assert "wrote" in first.stdout
    second = run()
    assert "up to date" in second.stdout and conf.read_text() == text
    # Somebody else's files are left alone, with a warning.
    conf.write_text('[engine]\nruntime = "crun"\n')
    dest.write_text("#!/bin/sh\nexec /usr/bin/podman \"$@\"\n")
    third = run()
    assert conf.read_text() == '[engine]\nruntime = "crun"\n'
    assert dest.read_text().startswith("#!/bin/sh\nexec")
    assert "not ours" in third.stderr


# ------------------------------------------------------------------ pinning and sharing


def test_pin_and_unpin_cwl_text() -> None:
    bi = load_build_images()
    text = (
        "hints:\n"
        "  DockerRequirement:\n"
        "    dockerPull: localhost/stellarflow/ingest:1.0.0\n"
        "  ResourceRequirement: {coresMin: 1}\n"
        "requirements:\n"
        "  DockerRequirement: {dockerPull: localhost/stellarflow/fake_module:1.1.0}\n"
    )
    ids = {"localhost/stellarflow/ingest:1.0.0": "a" * 64,
           "localhost/stellarflow/fake_module:1.1.0": "b" * 64}
    pinned = bi.pin_text(text, ids)
    assert ("    dockerPull: localhost/stellarflow/ingest:1.0.0\n"
            f"    dockerImageId: sha256:{'a' * 64}\n") in pinned
    assert (f"{{dockerPull: localhost/stellarflow/fake_module:1.1.0, dockerImageId: sha256:"
            f"{'b' * 64}}}") in pinned
    assert bi.pin_text(pinned, ids) == pinned  # idempotent
    assert bi.pin_text(pinned, {}) == text  # unpin restores the file


@pytest.mark.slow
def test_export_import_round_trip_and_pinned_run(built: list[str], tmp_path: Path) -> None:
    exp = subprocess.run([sys.executable, str(BUILD_IMAGES), "--no-setup", "--export",
                          str(tmp_path)], capture_output=True, text=True, env=runner_env(),
                         timeout=1800)
    assert exp.returncode == 0, exp.stderr
    bi = load_build_images()
    ids, archive_sum = bi.read_digests(tmp_path / bi.DIGESTS)
    assert set(ids) == set(built) and archive_sum
    imp = subprocess.run([sys.executable, str(BUILD_IMAGES), "--no-setup", "--import",
                          str(tmp_path)], capture_output=True, text=True, env=runner_env(),
                         timeout=1800)
    assert imp.returncode == 0, imp.stderr
    assert "image ids match the digest list" in imp.stdout
    # A tool pinned to the exported id runs that exact image.
    tool = tmp_path / "pinned.cwl"
    tool.write_text(bi.pin_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n  DockerRequirement:\n"
        f"    dockerPull: {PROBE_IMAGE}\n"
        "baseCommand: [printenv, STELLARFLOW_IMAGE]\ninputs: []\nstdout: env.txt\n"
        "outputs:\n  env: stdout\n", ids))
    r = cwltool(tool, {}, tmp_path / "out")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "env.txt").read_text().strip() == PROBE_IMAGE


# ------------------------------------------------------------------ same numbers in and out


MODULE_STAGE = {"msap1_preparation": "prepared", "msap4_rotation": "rotation",
                "transit_search": "transit"}


def images_match_code(bi) -> bool:
    """Whether the compared modules' images were built from the code now in containers/."""
    return all(bi.ModulePlan(CONTAINERS / m, bi.SUITE_DEFAULT).up_to_date for m in MODULE_STAGE)


def h5_content(path: Path) -> dict[str, object]:
    """Every dataset and attribute of a chunk file, minus where/when/in what it ran."""
    skip = {"image", "image_digest", "runtime", "host", "created_utc", "cpu_s"}
    out: dict[str, object] = {}

    def visit(name: str, obj) -> None:
        for k, v in obj.attrs.items():
            if k not in skip:
                out[f"{name}@{k}"] = v
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path) as f:
        visit("/", f)
        f.visititems(visit)
    return out


def assert_same_numbers(a: dict[str, object], b: dict[str, object], what: str) -> None:
    """Bitwise the same (NaN equal to NaN)."""
    assert a.keys() == b.keys(), what
    for key, va in a.items():
        assert np.array_equal(np.asarray(va), np.asarray(b[key]),
                              equal_nan=np.asarray(va).dtype.kind == "f"), (
            f"{what} {key}: {va!r} != {b[key]!r}")


def test_science_modules_give_identical_numbers_in_container_and_venv(built: list[str],
                                                                      tmp_path: Path) -> None:
    bi = load_build_images()
    if not images_match_code(bi):
        pytest.skip("the images are older than the modules' code: run `make images`")
    manifest = generate(tmp_path / "obs", "--stars", "3", "--days", "10", "--seed", "4",
                        "--observation-id", "same")
    lcs = sorted((manifest.parent / "lightcurves").glob("*.h5"))
    chunk = {"chunk_id": "chunk-0000", "stars": [
        {"star_id": p.stem, "lightcurve": {"class": "File", "path": str(p)}} for p in lcs]}
    data = tmp_path / "data"
    for d in ("in", "venv", "ctr"):
        (data / d).mkdir(parents=True)
    subprocess.run([str(VENV_BIN / "ingest"), "--outdir",
                    str(data / "in"), "--observation-id", "same", "--chunk-json",
                    json.dumps(chunk)], check=True, capture_output=True)
    lightcurves = data / "in" / "chunk-0000.lightcurves.h5"

    def both(module: str, arg: str, infile: Path) -> tuple[Path, Path]:
        rel = infile.relative_to(data)
        # The environment cwltool/Toil give a step: host settings such as OPENBLAS_CORETYPE
        # (set on this machine; it changes the last bits of BLAS results) reach neither mode.
        step_env = {"PATH": runner_env()["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
        v = subprocess.run([str(VENV_BIN / module), "--outdir", str(data / "venv"), arg,
                            str(infile)], capture_output=True, text=True, env=step_env)
        assert v.returncode == 0, v.stderr
        c = subprocess.run(["podman", "run", "--rm", "--net=none", "--read-only",
                            f"--volume={data}:/data", images.module_image(CONTAINERS / module),
                            module, "--outdir", "/data/ctr", arg, f"/data/{rel}"],
                           capture_output=True, text=True, env=runner_env(), timeout=300)
        assert c.returncode == 0, c.stderr
        (out_v,) = (data / "venv").glob(f"*.{MODULE_STAGE[module]}.h5")
        (out_c,) = (data / "ctr").glob(f"*.{MODULE_STAGE[module]}.h5")
        return out_v, out_c

    try:
        prep_v, prep_c = both("msap1_preparation", "--lightcurves", lightcurves)
        assert_same_numbers(h5_content(prep_v), h5_content(prep_c), "msap1_preparation")
        for module in ("msap4_rotation", "transit_search"):
            out_v, out_c = both(module, "--prepared", prep_v)
            assert_same_numbers(h5_content(out_v), h5_content(out_c), module)
    except AssertionError:
        if not images_match_code(bi):  # the code was edited meanwhile: not a fair comparison
            pytest.skip("a module's code changed during the test")
        raise
