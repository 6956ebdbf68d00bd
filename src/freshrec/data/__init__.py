"""Loaders for real public datasets and a synthetic shop for demos and tests."""

from freshrec.data.dataset import CleaningReport, Dataset

__all__ = ["CleaningReport", "Dataset"]
