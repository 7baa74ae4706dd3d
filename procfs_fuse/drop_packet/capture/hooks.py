"""Hook planning: for each stage, the first attach candidate that works.

The ones skipped before it are kept with the reason, so the report can say
exactly what ran and why. Pure logic: availability is asked of a function
passed in; the candidates are the stage table's (stages.py).
"""
from dataclasses import dataclass, field

from .stages import TABLE, Candidate


@dataclass(frozen=True)
class StageHook:
    stage: str
    chosen: Candidate = None                      # None: unavailable
    skipped: tuple = field(default_factory=tuple)  # ((Candidate, reason), ...)

    def describe(self):
        """One report line's text after "STAGE: "."""
        head = "unavailable"
        if self.chosen:
            head = self.chosen.describe() + (", approximate" if self.chosen.approximate else "")
            head += ": " + self.chosen.sees if self.chosen.sees else ""
        if self.skipped:
            head += " (%s)" % "; ".join("%s: %s" % (c.describe(), why) for c, why in self.skipped)
        return head


def plan(why_unavailable, table=TABLE):
    """One StageHook per stage, in the table's (the report's) order.

    why_unavailable(candidate) -> None if it is (or was just) attached, else a
    reason. The same walk previews a plan and performs an activation.
    """
    hooks = []
    for stage in table:
        skipped = []
        chosen = None
        for candidate in stage.candidates:
            why = why_unavailable(candidate)
            if why is None:
                chosen = candidate
                break
            skipped.append((candidate, why))
        hooks.append(StageHook(stage.name, chosen, tuple(skipped)))
    return hooks
