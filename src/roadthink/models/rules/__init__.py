"""The oracle's rules: every task's answer worked out from the ground-truth scene and the
question, written apart from the task code.

Each family module maps a task name to ``answer(scene, row)`` (``row``: the sample's fields
as in samples.jsonl, without the answer): the answer as content (the option text for
choice questions, the value otherwise). The rules are restated on purpose instead of
imported from ``roadthink.tasks``, so that the oracle agreeing with the benchmark (and the
tests that compare every built answer with them) is a real cross-check. A question the rules
cannot read raises (AssertionError, StopIteration): the oracle then has no answer.
"""

from roadthink.models.rules import corner_case, grounding, perception, planning, prediction, risk, spatial

ANSWERS = {
    **perception.ANSWERS,
    **spatial.ANSWERS,
    **prediction.ANSWERS,
    **risk.ANSWERS,
    **planning.ANSWERS,
    **corner_case.ANSWERS,
    **grounding.ANSWERS,
}
