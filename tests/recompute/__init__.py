"""Every task's answer recomputed from the scene, written apart from the task code.

Each family module maps a task name to ``expected(scene, row)``: the answer as content (the
option text for choice questions, the value otherwise). These use only the scene file and
the question text, and restate the task's rules on purpose instead of importing them.
"""

from recompute import corner_case, grounding, perception, planning, prediction, risk, spatial

ANSWERS = {
    **perception.ANSWERS,
    **spatial.ANSWERS,
    **prediction.ANSWERS,
    **risk.ANSWERS,
    **planning.ANSWERS,
    **corner_case.ANSWERS,
    **grounding.ANSWERS,
}
