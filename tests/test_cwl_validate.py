"""Every CWL document validates with cwltool and follows the project's conventions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

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


TOOLS = sorted((REPO / "cwl" / "tools").glob("*.cwl"))


@pytest.mark.parametrize("path", TOOLS, ids=[p.name for p in TOOLS])
def test_tool_conventions(path: Path) -> None:
    """The conventions `stellarflow check-module` checks (stellarflow.modulekit); a module's tool
    also runs that module's image at its module.yml version."""
    from stellarflow.images import read_module
    from stellarflow.modulekit import cwl_conventions

    mdir = REPO / "containers" / path.stem
    meta = read_module(mdir) if (mdir / "module.yml").exists() else None
    assert cwl_conventions(path, meta) == []
