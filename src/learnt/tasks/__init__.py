"""Optimizees: tasks (K stacked problems) and families that sample them."""
from learnt.tasks.base import Task, TaskFamily, no_batches
from learnt.tasks.quadratic import QuadraticFamily, QuadraticTask

__all__ = ["Task", "TaskFamily", "no_batches", "QuadraticFamily", "QuadraticTask"]
