"""Manifest contract: a bad manifest is refused before any work, one line naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from stellarflow import manifest
from stellarflow_contracts.errors import InputError

GOOD_LC = "lc/a.txt"


def write(tmp: Path, text: str, name: str = "m.yaml") -> Path:
    (tmp / "lc").mkdir(exist_ok=True)
    (tmp / GOOD_LC).write_text("0 1\n1 1\n")
    p = tmp / name
    p.write_text(text)
    return p


def star_yaml(star_id: str = "s1", lc: str = GOOD_LC) -> str:
    return f"manifest_version: 1\nobservation_id: obs1\nworkflow: sas\nstars:\n" \
           f"  - {{star_id: {json.dumps(star_id)}, lightcurve: {json.dumps(lc)}}}\n"


def test_good_manifest_becomes_cwl_job(tmp_path: Path) -> None:
    p = write(tmp_path, star_yaml() + "  - {star_id: s2, lightcurve: lc/a.txt, teff: 5800, "
                                      "logg: 4.4, feh: 0.1}\n")
    m = manifest.load(p)
    job = m.cwl_job(chunk_size=5)
    assert job["observation_id"] == "obs1" and job["chunk_size"] == 5
    assert job["stars"][0]["lightcurve"]["location"] == (tmp_path / GOOD_LC).resolve().as_uri()
    assert job["stars"][1]["teff"] == 5800


def test_json_manifest(tmp_path: Path) -> None:
    doc = {"manifest_version": 1, "observation_id": "o", "workflow": "sas",
           "stars": [{"star_id": "a", "lightcurve": GOOD_LC}]}
    p = write(tmp_path, json.dumps(doc), "m.json")
    assert manifest.load(p).stars[0].star_id == "a"


def test_missing_light_curve_is_star_level(tmp_path: Path) -> None:
    p = write(tmp_path, star_yaml() + "  - {star_id: s2, lightcurve: lc/nope.h5}\n")
    m = manifest.load(p)
    assert m.stars[0].input_error is None
    assert m.stars[1].input_error == "lc/nope.h5: light curve not found"
    assert "lightcurve" not in m.stars[1].to_cwl()


BAD = [
    ("malformed YAML", "manifest_version: 1\nstars: [\n", "invalid YAML"),
    ("not a mapping", "- 1\n- 2\n", "must be a mapping"),
    ("unknown workflow", star_yaml().replace("workflow: sas", "workflow: rm-rf"),
     "unknown workflow 'rm-rf'"),
    ("workflow as path", star_yaml().replace("workflow: sas", "workflow: /bin/sh"),
     "unknown workflow '/bin/sh'"),
    ("bad star id", star_yaml("a b"), "star_id"),
    ("unicode star id", star_yaml("s\u0430"), "star_id"),  # Cyrillic 'а'
    ("newline in id", star_yaml("s1\n"), "star_id"),
    ("bad observation id", star_yaml().replace("obs1", "../../etc"), "observation_id"),
    ("duplicate star ids", star_yaml() + "  - {star_id: s1, lightcurve: lc/a.txt}\n",
     "duplicate star_id 's1'"),
    ("absolute path", star_yaml(lc="/etc/passwd"), "is absolute"),
    ("parent path", star_yaml(lc="../x.h5"), "contains '..'"),
    ("wrong type", star_yaml().replace("manifest_version: 1", "manifest_version: '1'"),
     "manifest_version"),
    ("teff not a number", star_yaml()[:-2] + ", teff: hot}\n", "teff"),
    ("empty stars", "manifest_version: 1\nobservation_id: o\nworkflow: sas\nstars: []\n",
     "stars"),
    ("unknown field", star_yaml() + "command: rm -rf /\n", "Additional properties"),
    ("missing field", "manifest_version: 1\nobservation_id: o\nworkflow: sas\n", "stars"),
    ("empty file", "", "manifest is empty"),
]


@pytest.mark.parametrize("text,expected", [(t, e) for _, t, e in BAD],
                         ids=[n for n, _, _ in BAD])
def test_bad_manifest_one_line(tmp_path: Path, text: str, expected: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        manifest.load(p)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(p)), msg
    assert expected in msg, msg


def test_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("0 1\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink(outside, inbox / "lc")
    p = inbox / "m.yaml"
    p.write_text(star_yaml(lc="lc/secret.txt"))
    with pytest.raises(InputError, match="outside the manifest's folder"):
        manifest.load(p)


def test_huge_manifest(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("#" * (manifest.MAX_MANIFEST_BYTES + 1))
    with pytest.raises(InputError, match="more than the"):
        manifest.load(p)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest not found"):
        manifest.load(tmp_path / "nope.yaml")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefgh"):
        prev = "a" if i == 0 else "bcdefgh"[i - 1]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    p = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError, match="alias bomb"):
        manifest.load(p)


def test_several_files_per_star(tmp_path: Path) -> None:
    """A star's lightcurve may be a list (quarters, sectors): a File[] in the CWL job."""
    p = write(tmp_path, star_yaml() + "  - {star_id: s2, lightcurve: [lc/a.txt, lc/b.txt], "
                                      "teff: 5800}\n")
    (tmp_path / "lc" / "b.txt").write_text("2 1\n3 1\n")
    m = manifest.load(p)
    assert m.stars[1].lightcurve == [(tmp_path / "lc" / n).resolve() for n in ("a.txt", "b.txt")]
    job = m.cwl_job(chunk_size=5)
    rec = job["stars"][1]["lightcurve"]
    assert [r["class"] for r in rec] == ["File", "File"]
    assert rec[1]["location"] == (tmp_path / "lc" / "b.txt").resolve().as_uri()
    assert "logg" not in job["stars"][1]  # Teff alone is a valid star


@pytest.mark.parametrize("lc,expected", [
    ("[]", "manifest invalid at stars[0].lightcurve"),
    ("[lc/a.txt, ../x.txt]", "contains '..'"),
    ("[lc/a.txt, lc/a.txt]", "lists one light-curve file twice"),
])
def test_bad_file_lists(tmp_path: Path, lc: str, expected: str) -> None:
    p = write(tmp_path, "manifest_version: 1\nobservation_id: o\nworkflow: sas\nstars:\n"
                        f"  - {{star_id: s1, lightcurve: {lc}}}\n")
    with pytest.raises(InputError) as err:
        manifest.load(p)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_missing_file_of_a_list_is_star_level(tmp_path: Path) -> None:
    p = write(tmp_path, star_yaml(lc="x") .replace('"x"', "[lc/a.txt, lc/gone.txt]"))
    star = manifest.load(p).stars[0]
    assert star.lightcurve is None and star.input_error == "lc/gone.txt: light curve not found"
