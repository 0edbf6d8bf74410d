"""Indexing: the pipeline of stages from folders to stored vectors (pipeline.py), the executors
the analyse stage runs on (executors.py), and what a run reports (report.py)."""

from .executors import Executor, LocalPool, OnGpu, OnRay, choose_executor
from .pipeline import UPKEEP_EVERY, Plan, Scanned, run
from .report import FitResult, IndexReport

__all__ = ["Executor", "FitResult", "IndexReport", "LocalPool", "OnGpu", "OnRay", "Plan", "Scanned", "UPKEEP_EVERY",
           "choose_executor", "run"]
