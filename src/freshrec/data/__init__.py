"""Loaders for real public datasets, and generated shops for demos, tests and benchmarks.

The real data (MovieLens small, Online Retail II) is never shipped with freshrec:
it lives in a shared folder beside the project, or wherever ``FRESHREC_DATASETS_DIR``
points (not ``FRESHREC_DATA_DIR``: that is the service's own data directory).
:func:`shared_data_dir` finds that folder; loaders called without a path use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from freshrec.data.dataset import CleaningReport, Dataset
from freshrec.data.movielens import load_movielens
from freshrec.data.online_retail import baskets, load_online_retail
from freshrec.data.sequential import generate_sequential_shop
from freshrec.data.synthetic import ShopSimulator, generate_shop

DATA_DIR_ENV = "FRESHREC_DATASETS_DIR"


def shared_data_dir() -> Path | None:
    """The folder holding the real datasets, or ``None`` when there is none.

    ``FRESHREC_DATASETS_DIR`` wins when set (it is returned even if it does not exist,
    so that a typo surfaces as a clear "not found" from the loader instead of a
    silent fallback). Otherwise the folder is ``<project root>/../shared/data``,
    where the project root is the nearest ancestor holding a ``pyproject.toml``,
    looked up from the working directory first and then from this file, so both
    a checkout and an editable install find it.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            candidate = folder.parent / "shared" / "data"
            if (folder / "pyproject.toml").is_file() and candidate.is_dir():
                return candidate
    return None


DEFAULT_DATA_DIR: Path | None = shared_data_dir()
"""The data folder found at import time; loaders re-resolve it on every call."""

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "CleaningReport",
    "Dataset",
    "ShopSimulator",
    "baskets",
    "generate_sequential_shop",
    "generate_shop",
    "load_movielens",
    "load_online_retail",
    "shared_data_dir",
]
