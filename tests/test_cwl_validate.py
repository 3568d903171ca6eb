"""Every CWL document validates with cwltool and follows the project's conventions."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import REPO

CWL_FILES = sorted(p for p in (REPO / "cwl").rglob("*.cwl"))
CWL_FILES += sorted((REPO / "dummy_pipeline").rglob("*.cwl"))


@pytest.mark.parametrize("path", CWL_FILES, ids=[str(p.relative_to(REPO)) for p in CWL_FILES])
def test_cwltool_validate(path: Path) -> None:
    from cwltool.main import main as cwltool_main

    err = io.StringIO()
    # --enable-ext: the Dummy Pipeline uses cwltool:CUDARequirement (a cwltool extension).
    rc = cwltool_main(["--enable-ext", "--validate", str(path)], stderr=err)
    assert rc == 0, err.getvalue()[-2000:]
    assert "WARNING" not in err.getvalue(), err.getvalue()[-2000:]


SAS_TOOLS = sorted((REPO / "cwl" / "tools").glob("*.cwl"))


@pytest.mark.parametrize("path", SAS_TOOLS, ids=[p.name for p in SAS_TOOLS])
def test_tool_conventions(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env cwl-runner\ncwlVersion: v1.2\nclass: ")
    assert os.access(path, os.X_OK)
    doc = YAML(typ="safe").load(text)
    assert "$schemas" not in doc
    for key in ("s:softwareVersion", "s:license", "s:author", "label", "doc"):
        assert key in doc, key
    ports = list(doc["inputs"].items()) + list(doc["outputs"].items())
    for name, port in ports:
        assert port.get("doc") and port.get("label"), f"{path.name}:{name} needs doc and label"
        if str(port["type"]).startswith("File"):
            assert "format" in port, f"{path.name}:{name} needs a format"
    if doc["class"] == "CommandLineTool":
        hints = doc["hints"]
        assert hints["DockerRequirement"]["dockerPull"].startswith("localhost/stellarflow-")
        assert {"coresMin", "ramMin", "tmpdirMin"} <= set(hints["ResourceRequirement"])
        assert doc["baseCommand"][:2] == ["python", "-m"]
        assert (path.with_suffix(".job.yml")).exists(), "a job file beside the tool"
