"""Work-around for ruamel.yaml's quadratic ``CommentedSeq.__deepcopy__`` (ruamel.yaml 0.19.1,
upstream ticket 513 on sourceforge: ``copy_attributes`` is indented into the element loop, so a
sequence of n items deep-copies its own n-entry line/column table n times).

cwltool loads the CWL job through ruamel.yaml's round-trip loader and deep-copies it several
times (``Process._init_job``); a job with 10 000 stars then takes minutes per copy in the leader
before any work starts (measured: 1 000 stars 1.7 s, 2 000 10.6 s, 4 000 54 s per copy; with the
fix 0.2, 0.5 and 1.1 s, and 2.3 s for 10 000). The fix copies the attributes once, after the
elements, as the mapping's ``__deepcopy__`` already does. ``has_bug`` checks ruamel's behaviour
first: once it is fixed upstream, nothing is changed.
"""

from __future__ import annotations

import copy
import os
from typing import Any

ISSUE = "ruamel.yaml ticket 513 (CommentedSeq.__deepcopy__ copies its attributes per element)"
OFF_ENV = "STELLARFLOW_RUAMEL_DEEPCOPY"  # "off": leave ruamel.yaml alone (to see the bug)


def has_bug() -> bool:
    """True while deep-copying a 3-item sequence copies its attributes more than once."""
    from ruamel.yaml.comments import CommentedSeq

    calls = 0
    seq = CommentedSeq([1, 2, 3])
    original = seq.copy_attributes

    def counting(t: Any, memo: Any = None) -> Any:
        nonlocal calls
        calls += 1
        return original(t, memo=memo)

    seq.copy_attributes = counting  # type: ignore[method-assign]
    copy.deepcopy(seq)
    return calls > 1


def _deepcopy(self: Any, memo: Any) -> Any:
    res = self.__class__()
    memo[id(self)] = res
    for k in self:
        res.append(copy.deepcopy(k, memo))
    self.copy_attributes(res, memo=memo)
    return res


def apply() -> bool:
    """Patch CommentedSeq.__deepcopy__ when ruamel.yaml still has the bug; True if patched."""
    if os.environ.get(OFF_ENV, "").lower() == "off":
        return False
    try:
        from ruamel.yaml.comments import CommentedSeq
    except ImportError:
        return False
    if getattr(CommentedSeq.__deepcopy__, "_stellarflow_fix", False) or not has_bug():
        return False
    _deepcopy._stellarflow_fix = True  # type: ignore[attr-defined]
    CommentedSeq.__deepcopy__ = _deepcopy  # type: ignore[method-assign]
    return True
