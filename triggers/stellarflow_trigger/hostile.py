"""A corpus of hostile manifests (tests and scripts/bench_trigger.py --hostile use it).

``write_all(inbox, outside)`` drops each case into INBOX the way a writer would (write a hidden
temporary, rename in); ``outside`` is a folder beside the inbox used as the target of escapes.
Every case must end in INBOX/failed/ with a one-line reason while the service keeps serving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def _doc(**over: object) -> dict:
    doc: dict = {"manifest_version": 1, "observation_id": "hostile", "workflow": "sas",
                 "stars": [{"star_id": "s1", "lightcurve": "lc/ok.h5"}]}
    doc.update(over)
    return doc


def _star(**over: object) -> dict:
    return _doc(stars=[{"star_id": "s1", "lightcurve": "lc/ok.h5", **over}])


def _bomb() -> str:
    lines = ["manifest_version: 1", "observation_id: bomb", "workflow: sas",
             "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines + ["stars: [*a8]"]) + "\n"


# name -> (what it tries, file name, content: str | bytes | dict (JSON) | None (special))
CASES: dict[str, tuple[str, str, object]] = {
    "traversal": ("light curve '../outside/lc.h5'", "h01-traversal.json",
                  _star(lightcurve="../outside/lc.h5")),
    "traversal-nested": ("light curve 'lc/../../outside/lc.h5'", "h02-nested.json",
                         _star(lightcurve="lc/../../outside/lc.h5")),
    "absolute": ("light curve '/etc/passwd'", "h03-absolute.json", _star(lightcurve="/etc/passwd")),
    "symlink-escape": ("light curve through a symlink leaving the inbox", "h04-symlink.json",
                       _star(lightcurve="escape/lc.h5")),
    "symlinked-manifest": ("the manifest itself is a symlink to a file outside", "h05-link.json",
                           None),
    "unknown-workflow": ("workflow 'evil'", "h06-workflow.json", _doc(workflow="evil")),
    "workflow-path": ("workflow given as a CWL path", "h07-cwlpath.json",
                      _doc(workflow="../cwl/workflows/sas.cwl")),
    "command-field": ("an extra 'command: rm -rf /' field", "h08-command.json",
                      _doc(command="rm -rf /")),
    "shell-in-id": ("observation_id 'x; rm -rf ~'", "h09-shell-id.json",
                    _doc(observation_id="x; rm -rf ~")),
    "huge": ("a 5 MiB manifest", "h10-huge.yaml", "# " + "x" * (5 * 1024 * 1024) + "\n"),
    "invalid-yaml": ("broken YAML", "h11-invalid.yaml", "stars: [unclosed\n  - : :\n"),
    "invalid-json": ("broken JSON", "h12-invalid.json", '{"manifest_version": 1,'),
    "wrong-types": ("stars is a string, teff a word", "h13-types.json",
                    _doc(stars="all of them")),
    "wrong-type-teff": ("teff 'hot'", "h14-teff.json", _star(teff="hot")),
    "duplicate-ids": ("two stars with the same star_id", "h15-dups.json",
                      _doc(stars=[{"star_id": "s1", "lightcurve": "lc/ok.h5"},
                                  {"star_id": "s1", "lightcurve": "lc/ok.h5"}])),
    "unicode-homoglyph": ("observation_id with a Cyrillic 'а'", "h16-homoglyph.json",
                          _doc(observation_id="obs\u0430")),
    "unicode-rtl": ("star_id with a right-to-left override", "h17-rtl.json",
                    _star(star_id="s1\u202egpj.exe")),
    "trailing-newline-id": ("observation_id 'obs\\n' ($ matches before a newline)",
                            "h18-newline.json", _doc(observation_id="obs\n")),
    "empty-stars": ("stars: []", "h19-empty-stars.json", _doc(stars=[])),
    "empty-file": ("a zero-byte file", "h20-empty.yaml", ""),
    "not-mapping": ("a YAML list at the top", "h21-list.yaml", "- a\n- b\n"),
    "nul-in-path": ("NUL byte in the light-curve path", "h22-nul.json",
                    _star(lightcurve="lc/ok.h5\u0000../../etc/passwd")),
    "not-utf8": ("Latin-1 bytes", "h23-latin1.yaml", "observation_id: caf\xe9\n".encode("latin-1")),
    "version-2": ("manifest_version 2", "h24-version.json", _doc(manifest_version=2)),
    "alias-bomb": ("YAML alias bomb (10^8 nodes from 9 lines)", "h25-bomb.yaml", _bomb()),
    "directory": ("a directory named like a manifest", "h26-dir.yaml", None),
    "fifo": ("a named pipe named like a manifest (would block a reader)", "h27-fifo.yaml", None),
    "drive-path": ("Windows drive path 'C:\\\\lc.h5'", "h28-drive.json",
                   _star(lightcurve="C:\\lc.h5")),
}


def _put(inbox: Path, name: str, data: bytes) -> None:
    tmp = inbox / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, inbox / name)


def prepare(inbox: Path, outside: Path) -> None:
    """The valid light curve the cases point at, and the escape targets."""
    inbox, outside = inbox.resolve(), outside.resolve()
    (inbox / "lc").mkdir(parents=True, exist_ok=True)
    (inbox / "lc" / "ok.h5").write_bytes(b"not read: manifests fail before")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "lc.h5").write_bytes(b"secret")
    (outside / "manifest.json").write_text(json.dumps(_doc(observation_id="via-link")))
    link = inbox / "escape"
    if not link.is_symlink():
        link.symlink_to(outside, target_is_directory=True)


def write_case(inbox: Path, outside: Path, key: str) -> str:
    _, name, content = CASES[key]
    inbox, outside = inbox.resolve(), outside.resolve()
    if key == "symlinked-manifest":
        tmp = inbox / f".{name}.tmp"
        tmp.symlink_to(outside / "manifest.json")
        os.replace(tmp, inbox / name)
    elif key == "directory":
        tmp = inbox / f".{name}.tmp"
        tmp.mkdir()
        os.replace(tmp, inbox / name)
    elif key == "fifo":
        tmp = inbox / f".{name}.tmp"
        os.mkfifo(tmp)
        os.replace(tmp, inbox / name)
    elif isinstance(content, dict):
        _put(inbox, name, json.dumps(content).encode())
    elif isinstance(content, str):
        _put(inbox, name, content.encode("utf-8"))
    else:
        assert isinstance(content, bytes)
        _put(inbox, name, content)
    return name


def write_all(inbox: Path, outside: Path,
              each: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """Drop every case; returns {case: file name}."""
    prepare(inbox, outside)
    names = {}
    for key in CASES:
        names[key] = write_case(inbox, outside, key)
        if each:
            each(key, names[key])
    return names
