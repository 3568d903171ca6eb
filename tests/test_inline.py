"""stellarflow.inline: sub-workflows inlined for Toil; valid CWL; what cannot be inlined is kept.

That an inlined run gives the same products as the files as written is the end-to-end test's
comparison (Toil runs the inlined copy, cwltool the files as written).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cwltool.main import main as cwltool_main
from ruamel.yaml import YAML

from stellarflow.inline import SEP, inline

from conftest import REPO

WORKFLOWS = REPO / "cwl" / "workflows"


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_sas_is_inlined_and_valid(tmp_path: Path) -> None:
    top = inline(WORKFLOWS / "sas.cwl", tmp_path)
    assert cwltool_main(["--validate", str(top)]) == 0
    sas = load(top)
    # The scatter over chunks keeps its sub-workflow, which is itself inlined.
    assert sas["steps"]["analyse"]["scatter"] == "chunk"
    chunk_wf = Path(sas["steps"]["analyse"]["run"])
    assert chunk_wf.parent == tmp_path
    steps = load(chunk_wf)["steps"]
    assert set(steps) == {f"msap1{SEP}ingest", f"msap1{SEP}prepare",
                          f"msap4{SEP}measure_rotation", f"msap3{SEP}measure_seismology",
                          f"msap5{SEP}derive_parameters", f"transits{SEP}search_transits",
                          "star_products"}
    for step in steps.values():
        assert load(Path(step["run"]))["class"] == "CommandLineTool"
    # The stage's condition moves onto its step, with the input it reads.
    seis = steps[f"msap3{SEP}measure_seismology"]
    assert seis["when"] == "$(inputs.n_seismic_candidates > 0)"
    assert seis["in"] == {"prepared": f"msap1{SEP}prepare/prepared",
                          "n_seismic_candidates": f"msap1{SEP}prepare/n_seismic_candidates"}
    assert steps["star_products"]["in"]["seismology"] == f"msap3{SEP}measure_seismology/seismology"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TOOL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  x: {type: string, inputBinding: {position: 1}}
outputs:
  out: stdout
"""
# The inner workflow's one step (echo its input a).
SAY_STEP = """steps:
  say:
    run: echo.cwl
    in: {x: a}
    out: [out]
"""


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A folder of source CWL with the echo tool."""
    d = tmp_path / "src"
    d.mkdir()
    write(d / "echo.cwl", TOOL)
    return d


def test_defaults_and_pass_through_outputs(tmp_path: Path, src: Path) -> None:
    write(src / "inner.cwl", """cwlVersion: v1.2
class: Workflow
inputs:
  a: {type: string, default: from-inner-default}
  b: string
outputs:
  echoed: {type: File, outputSource: say/out}
  same_b: {type: string, outputSource: b}
""" + SAY_STEP)
    write(src / "outer.cwl", """cwlVersion: v1.2
class: Workflow
requirements:
  SubworkflowFeatureRequirement: {}
inputs:
  b: string
outputs:
  echoed: {type: File, outputSource: sub/echoed}
  b_again: {type: string, outputSource: sub/same_b}
steps:
  sub:
    run: inner.cwl
    in: {b: b}
    out: [echoed, same_b]
""")
    out = tmp_path / "out"
    top = load(inline(src / "outer.cwl", out))
    assert set(top["steps"]) == {f"sub{SEP}say"}
    assert top["steps"][f"sub{SEP}say"]["in"] == {"x": {"default": "from-inner-default"}}
    assert top["outputs"]["echoed"]["outputSource"] == f"sub{SEP}say/out"
    assert top["outputs"]["b_again"]["outputSource"] == "b"
    assert cwltool_main(["--validate", str(out / "outer.cwl")]) == 0


def test_a_step_it_cannot_inline_is_kept_as_written(tmp_path: Path, src: Path) -> None:
    write(src / "inner.cwl", """cwlVersion: v1.2
class: Workflow
inputs:
  a: string
outputs:
  echoed: {type: File, outputSource: say/out}
""" + SAY_STEP)
    write(src / "outer.cwl", """cwlVersion: v1.2
class: Workflow
requirements:
  SubworkflowFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  a: string
outputs:
  echoed: {type: File, outputSource: sub/echoed}
steps:
  sub:
    run: inner.cwl
    in:
      a: {source: a, valueFrom: $(self + "!")}
    out: [echoed]
""")
    out = tmp_path / "out"
    top = load(inline(src / "outer.cwl", out))
    assert set(top["steps"]) == {"sub"}
    assert Path(top["steps"]["sub"]["run"]) == (src / "inner.cwl").resolve()
    assert cwltool_main(["--validate", str(out / "outer.cwl")]) == 0
