"""The PC-PTSD-5, the screen of the 30-day check-in: its wording, its cut-point, and what each answer records.

Primary Care PTSD Screen for DSM-5 (Prins, Bovin, Smolenski et al., 2016; US National Center for
PTSD; public domain). It is validated in English; no validated French version exists, so answers
given to the French text are recorded as given to a translation that is not validated.
Pure code: the words are marked for the catalogs here and translated where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from service.i18n import N_


@dataclass(frozen=True, slots=True)
class Instrument:
    """A yes/no screening instrument as it is shown and scored."""

    name: str
    version: str
    cut_point: int  # "yes" answers that make a screen positive
    validated_languages: frozenset[str]
    preamble: str
    stem: str
    items: tuple[str, ...]

    def validated(self, lang: str) -> bool:
        """Whether the instrument's text in `lang` is a validated version."""
        return lang in self.validated_languages

    def positive(self, answers: Sequence[bool]) -> bool:
        """Whether the answers (True = yes) reach the cut-point."""
        return sum(1 for answer in answers if answer is True) >= self.cut_point


PC_PTSD_5 = Instrument(
    name="PC-PTSD-5",
    version="2016",
    cut_point=3,
    validated_languages=frozenset({"en"}),
    # The instrument's preamble, without its opening question: the event is known (this incident).
    preamble=N_("Sometimes things happen to people that are unusually or especially frightening, horrible, or "
                "traumatic. For example: a serious accident or fire; a physical or sexual assault or abuse; an "
                "earthquake or flood; a war; seeing someone be killed or seriously injured; having a loved one die "
                "through homicide or suicide."),
    stem=N_("In the past month, have you…"),
    items=(
        N_("had nightmares about the event(s) or thought about the event(s) when you did not want to?"),
        N_("tried hard not to think about the event(s) or went out of your way to avoid situations that reminded "
           "you of the event(s)?"),
        N_("been constantly on guard, watchful, or easily startled?"),
        N_("felt numb or detached from people, activities, or your surroundings?"),
        N_("felt guilty or unable to stop blaming yourself or others for the event(s) or any problems the event(s) "
           "may have caused?"),
    ),
)
