"""Questions with exact answers about scenes: samples, task generators, benchmark builds."""

from roadthink.tasks import (  # noqa: F401  (register the tasks)
    corner_cases,
    grounding,
    perception,
    planning,
    prediction,
    risk,
    spatial,
)
from roadthink.tasks.registry import FAMILIES, TASKS, Task, select_tasks
from roadthink.tasks.sample import AnswerType, Fact, Sample, Step, View

__all__ = ["FAMILIES", "TASKS", "AnswerType", "Fact", "Sample", "Step", "Task", "View", "select_tasks"]
