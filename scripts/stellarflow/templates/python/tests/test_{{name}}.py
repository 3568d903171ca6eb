"""{{name}} on its fixture: values against numpy, the broken star failed alone."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

import {{name}} as module

DATA = Path(__file__).resolve().parent / "data"


def test_measure() -> None:
    assert module.measure(np.array([1.0, 1.0, np.nan])) == (2, 0.0)


def test_chunk_on_the_fixture(tmp_path: Path) -> None:
    src = DATA / "chunk-0000.prepared.h5"
    assert module.main(["--prepared", str(src), "--outdir", str(tmp_path)]) == 0
    with h5py.File(src) as f_in, h5py.File(tmp_path / f"chunk-0000.{module.STAGE}.h5") as f:
        for sid, g in f["stars"].items():
            if sid == "broken":  # no prepared light curve: failed here, alone
                assert g.attrs["status"] == "failed"
                assert g.attrs["error"].startswith(f"{module.MODULE}: ")
            elif f_in["stars"][sid].attrs["status"] == "ok":
                flux = f_in["stars"][sid]["prepared/flux"][()]
                assert g.attrs["n_points"] == flux.size
                assert np.isclose(g.attrs["rms_ppm"], np.std((flux - 1) * 1e6))
    summary = json.loads((tmp_path / f"chunk-0000.{module.STAGE}.summary.json").read_text())
    assert summary["stars"]["ok"] >= 1 and summary["star"]["broken"]["status"] == "failed"
