"""Doctest collection of src/: skip the modules of optional extras that are not installed.

The torch network of the SASRec contestant imports torch at module level; without the
``seq`` extra it cannot even be imported, so its doctests are left out (CI installs the
extra: tests/evaluation/test_sasrec.py fails there if torch is missing).
"""

from __future__ import annotations

import importlib.util

collect_ignore = ([] if importlib.util.find_spec("torch") is not None
                  else ["src/freshrec/evaluation/contestants/_sasrec_net.py"])
