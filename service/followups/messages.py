"""The words of every message Debrief sends, in French and English, as plain text and HTML.

Pure code: the caller passes every fact (times in UTC with the zone to show them in, links
already signed). Participants' messages carry the consent notice and their decline and
opt-out links; facilitators' and coordinators' messages carry no participant data except an
escalation, which goes to one clinician (or, failing one, the CISM coordinators) and to no one else.

The words come from the gettext catalogs (English msgids, French in service/translations) and
dates from Babel's CLDR data, outside any request: workers compose messages.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlencode

from service import i18n
from service.calendars.render import language_of, wording
from service.i18n import N_, translate

LANGUAGES = i18n.LANGUAGES


class _InEachLanguage(Mapping[str, tuple[str, ...]]):
    """Messages of the catalogs read by language (`table[lang]`), translated when read."""

    def __init__(self, *messages: str) -> None:
        self.messages = messages

    def __getitem__(self, lang: str) -> tuple[str, ...]:
        if lang not in LANGUAGES:
            raise KeyError(lang)
        return tuple(translate(lang, message) for message in self.messages)

    def __iter__(self) -> Iterator[str]:
        return iter(LANGUAGES)

    def __len__(self) -> int:
        return len(LANGUAGES)


# PC-PTSD-5 (Prins et al., 2016; US National Center for PTSD, public domain), about this incident;
# SCREEN_ITEMS[lang] are the five questions in a language (the response page shows them too).
SCREEN_ITEMS = _InEachLanguage(
    N_("had nightmares about the event or thought about it when you did not want to?"),
    N_("tried hard not to think about the event or went out of your way to avoid situations that reminded you of it?"),
    N_("been constantly on guard, watchful, or easily startled?"),
    N_("felt numb or detached from people, activities, or your surroundings?"),
    N_("felt guilty or unable to stop blaming yourself or others for the event or any problems it may have caused?"),
)
SCREEN_INTRO = N_("In the past month, have you…")

# The consent notice: every participant's message ends with it, and the participants' pages show
# its first two parts. WHO_SEES must say exactly what each role is shown (followups.service).
VOLUNTARY = N_("Taking part is voluntary, and saying no has no consequence for you. Nothing said in a session is "
               "recorded.")
WHO_SEES = N_(
    "Who sees what: no one is shown your answers to the check-in questions. If you ask to be contacted, or if your "
    "answers to the one-month questions suggest that more support could help, one clinician of the team is told "
    "your name, how to reach you and which of the two it is, so that they can contact you. The coordinators of the "
    "peer support team see whether you answered each message and what you answered to invitations and to the offer "
    "of an individual session; of the check-ins, they see only that a clinician will contact you. Your supervisors "
    "and your chain of command never see anything about you, not even whether you took part."
)
OPT_OUT_NOTICE = N_("You can stop all further messages about this incident with the opt-out link of this message.")

REASONS = {
    "window_closed": N_("no session time is left in the window"),
    "language_not_covered": N_("no facilitator speaks the group's language"),
    "region_not_covered": N_("no facilitator serves the region"),
    "all_candidates_conflicted": N_("every candidate has a conflict of interest"),
    "no_clinician_available": N_("no clinician is available"),
    "not_enough_peers": N_("not enough peer supporters are available"),
    "no_common_slot": N_("the team has no common free time in the window"),
    "no_replacement": N_("a facilitator left and no replacement was found"),
    "cancelled_by_coordinator": N_("the session was cancelled by a coordinator"),
    "planning_contention": N_("planning was interrupted by concurrent changes"),
    "planning_failed": N_("the planner could not plan it"),
}


@dataclass(frozen=True, slots=True)
class Link:
    """A labelled link of a message."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Letter:
    """A message before it is laid out as text and HTML."""

    subject: str
    paragraphs: tuple[str, ...]
    links: tuple[Link, ...] = ()
    notice: str | None = None
    items: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What a message says about a session: kind, time, place and agenda, never who attends."""

    kind: str
    starts_at: datetime
    ends_at: datetime
    mode: str
    region: str
    timezone: str
    agenda: tuple[tuple[str, datetime, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseLinks:
    """A participant's signed link for one follow-up, and the actions it proposes."""

    respond: str

    def action(self, action: str, **values: str) -> str:
        """The link proposing an action (the participant confirms it; a GET changes nothing)."""
        return f"{self.respond}?{urlencode({'action': action, **values})}"

    @property
    def accept(self) -> str:
        """Accept an invitation or the offer."""
        return self.action("accept")

    @property
    def decline(self) -> str:
        """Decline an invitation or the offer."""
        return self.action("decline")

    @property
    def opt_out(self) -> str:
        """Stop all contact about this incident."""
        return self.action("opt_out")

    @property
    def contact_me(self) -> str:
        """Answer a check-in asking for a clinician's call."""
        return self.action("answer", contact_requested="true")

    @property
    def all_fine(self) -> str:
        """Answer a check-in: no contact needed."""
        return self.action("answer", contact_requested="false")


def consent(lang: str) -> str:
    """The consent notice of a participant's message: voluntary, who sees what, how to stop."""
    return " ".join(translate(lang, part) for part in (VOLUNTARY, WHO_SEES, OPT_OUT_NOTICE))


def language(code: str | Iterable[str]) -> str:
    """fr or en: a participant's language, or a facilitator's first language."""
    if isinstance(code, str):
        return code if code in LANGUAGES else "en"
    return language_of(code)


def when(moment: datetime, zone: str, lang: str) -> str:
    """A date and time in words, in the given zone: "Tuesday, November 24, 2026 at 9:00 a.m."."""
    return i18n.when(moment, zone, lang)


def describe(session: SessionFacts, lang: str, *, with_agenda: bool = False) -> list[str]:
    """The session in a few lines: what, when (local time), how long, where."""
    words = wording(lang)
    kind = words.kinds.get(session.kind, session.kind)
    minutes = int((session.ends_at - session.starts_at).total_seconds()) // 60
    place = words.in_person % {"region": session.region} if session.mode == "in_person" else words.virtual
    lines = [translate(lang, "%(kind)s: %(when)s (%(zone)s time), %(minutes)s min, %(place)s.", kind=kind,
                       when=when(session.starts_at, session.timezone, lang), zone=session.timezone, minutes=minutes,
                       place=place)]
    if with_agenda and session.agenda:
        lines.append(words.agenda + " " + "; ".join(
            words.agenda_line % {"time": i18n.clock(start, session.timezone, lang),
                                 "phase": words.phases.get(phase, phase), "minutes": phase_minutes}
            for phase, start, phase_minutes in session.agenda
        ) + ".")
    return lines


# -- participants ---------------------------------------------------------------------------------


def invitation(lang: str, session: SessionFacts, links: ResponseLinks, *, change: str = "new") -> Letter:
    """An invitation to a session; `change` is new, moved or cancelled (or removed from it)."""
    details = describe(session, lang)
    stop = Link(translate(lang, "Stop all messages"), links.opt_out)
    individual = session.kind == "individual"
    if change == "cancelled":
        return Letter(
            subject=translate(lang, "Session cancelled"),
            paragraphs=(translate(lang, "The following session you were invited to will not take place for you:"),
                        *details,
                        translate(lang, "You can book another time with the link of the offer you received.")
                        if individual else
                        translate(lang, "If another session is offered to you, you will receive a new invitation.")),
            links=(stop,), notice=consent(lang),
        )
    if individual and change == "new":
        # The person booked it themselves: a confirmation, not an invitation to answer.
        return Letter(
            subject=translate(lang, "Your individual session is booked"),
            paragraphs=(translate(lang, "Your individual session is booked:"), *details,
                        translate(lang, "The attached calendar file adds it to your calendar. If you can no longer "
                                        "come, cancel it with the link below; you can then book another time.")),
            links=(Link(translate(lang, "Cancel this session"), links.decline), stop),
            notice=consent(lang),
        )
    if change == "moved":
        subject = translate(lang, "Session changed")
        opening = translate(lang, "The session you are invited to has changed. Here is the new schedule:")
    else:
        subject = translate(lang, "Invitation to a support session")
        opening = translate(lang, "After the critical incident you were involved in, the peer support team invites you "
                                  "to this session:")
    return Letter(
        subject=subject,
        paragraphs=(opening, *details, translate(lang, "The attached calendar file adds the session to your calendar. "
                                                       "Let us know whether you will attend:")),
        links=(Link(translate(lang, "I will attend"), links.accept),
               Link(translate(lang, "I will not attend"), links.decline), stop),
        notice=consent(lang),
    )


def offer(lang: str, links: ResponseLinks, *, peer: str, clinician: str) -> Letter:
    """The offer of an individual session with a peer or a clinician, the participant's choice."""
    return Letter(
        subject=translate(lang, "An individual session, if you would like one"),
        paragraphs=(
            translate(lang, "Besides the group session, you can have a confidential 60-minute individual session "
                            "within the next seven days, with a peer supporter or with a clinician, whichever you "
                            "prefer."),
            translate(lang, "Choose below: you will then pick one of the times free in the next seven days, and "
                            "get its confirmation by email."),
        ),
        links=(Link(translate(lang, "Meet a peer supporter"), peer), Link(translate(lang, "Meet a clinician"), clinician),
               Link(translate(lang, "No, thank you"), links.decline),
               Link(translate(lang, "Stop all messages"), links.opt_out)),
        notice=consent(lang),
    )


def checkin(lang: str, links: ResponseLinks) -> Letter:
    """The check-in two days after the group session."""
    return Letter(
        subject=translate(lang, "How are you doing?"),
        paragraphs=(
            translate(lang, "A few days have passed since the group session. It is normal to still feel tired or "
                            "irritable or to sleep poorly; these reactions usually fade on their own."),
            translate(lang, "If you would like to talk to someone, a clinician of the team can contact you, in "
                            "confidence."),
        ),
        links=(Link(translate(lang, "I would like to be contacted"), links.contact_me),
               Link(translate(lang, "I am fine, thank you"), links.all_fine),
               Link(translate(lang, "Stop all messages"), links.opt_out)),
        notice=consent(lang),
    )


def screening(lang: str, links: ResponseLinks) -> Letter:
    """The 30-day check-in with the five PC-PTSD-5 questions."""
    return Letter(
        subject=translate(lang, "One month after the incident: five questions"),
        paragraphs=(
            translate(lang, "A month has passed since the incident. These five yes-or-no questions help tell whether "
                            "more support could help you. You can answer them again until the link expires: your "
                            "latest answers are the ones that count."),
            translate(lang, SCREEN_INTRO),
        ),
        items=SCREEN_ITEMS[lang],
        links=(Link(translate(lang, "Answer"), links.action("answer")),
               Link(translate(lang, "I would like to be contacted"), links.contact_me),
               Link(translate(lang, "Stop all messages"), links.opt_out)),
        notice=consent(lang),
    )


def booking_pending(lang: str, links: ResponseLinks) -> Letter:
    """To a participant whose individual session could not be booked at once."""
    return Letter(
        subject=translate(lang, "Your individual session"),
        paragraphs=(translate(lang, "Thank you for your answer. No time was free in the next seven days; a "
                                    "coordinator of the team will contact you to arrange the session."),),
        links=(Link(translate(lang, "Stop all messages"), links.opt_out),), notice=consent(lang),
    )


# -- facilitators ---------------------------------------------------------------------------------

ASSIGNMENT_SUBJECTS = {
    "new": N_("New assignment"), "moved": N_("Session changed"), "cancelled": N_("Session cancelled"),
    "reminder": N_("Reminder: session tomorrow"),
}
ASSIGNMENT_OPENINGS = {
    "new": N_("You are assigned to this session:"),
    "moved": N_("A session you are assigned to has changed:"),
    "cancelled": N_("This session is no longer on your schedule (cancelled, or given to another facilitator):"),
    "reminder": N_("A reminder of your session tomorrow:"),
}


def assignment(lang: str, session: SessionFacts, *, change: str = "new", reference: str) -> Letter:
    """A facilitator's assignment; `change` is new, moved, cancelled (or taken off the team) or reminder."""
    details = describe(session, lang, with_agenda=change != "cancelled")
    # TRANSLATORS: the session's page is linked below the message; "say so" opens the replacement.
    closing = translate(lang, "Your calendar feed is up to date. If you cannot lead this session, say so on its page "
                              "(link below): a replacement will be found automatically.")
    paragraphs = (translate(lang, ASSIGNMENT_OPENINGS[change]), *details, *(() if change == "cancelled" else (closing,)),
                  translate(lang, "Reference: %(ref)s", ref=reference))
    return Letter(subject=translate(lang, ASSIGNMENT_SUBJECTS[change]), paragraphs=paragraphs)


def escalation(lang: str, *, reason: str, name: str, email: str, phone: str | None, participant_language: str,
               incident_type: str, occurred_at: datetime, timezone: str, update: bool = False) -> Letter:
    """To the clinician who must contact a participant (a positive screen or a request for contact).

    What they need to reach the person and why, never the answers. `update`: the person, who had
    asked to be contacted, has screened positive since.
    """
    why = {
        "positive_screen": N_("A person involved in a critical incident (%(incident)s, %(when)s) needs to be contacted "
                              "by a clinician, after a positive PC-PTSD-5 screen (3 or more “yes” answers) "
                              "at the one-month check-in."),
        "contact_requested": N_("A person involved in a critical incident (%(incident)s, %(when)s) needs to be "
                                "contacted by a clinician, after the person's own request to be contacted."),
    }[reason]
    earlier = (translate(lang, "This updates an earlier message about the same person, who had asked to be contacted."),
               ) if update else ()
    return Letter(
        subject=translate(lang, "Clinical follow-up needed"),
        paragraphs=(
            *earlier,
            translate(lang, why, incident=incident_type, when=when(occurred_at, timezone, lang)),
            translate(lang, "Name: %(name)s", name=name), translate(lang, "Email: %(email)s", email=email),
            translate(lang, "Phone: %(phone)s", phone=phone or "—"),
            translate(lang, "Language: %(language)s", language=participant_language),
            translate(lang, "This information is confidential: it must not be passed on to the person's chain of "
                            "command."),
        ),
    )


def facilitator_links(lang: str, *, session_url: str | None, own_url: str) -> tuple[Link, ...]:
    """The links of a facilitator's message: the session's page (none once they are off it) and their own page."""
    session = () if session_url is None else (
        Link(translate(lang, "See this session, or say you cannot lead it"), session_url),)
    return (*session, Link(translate(lang, "Your page (upcoming sessions, time off, calendar)"), own_url))


# -- coordinators (bilingual: a team mailbox has no one language) -----------------------------------


def _bilingual_subject(message: str, external_id: str) -> str:
    """"Debrief — French / English: reference", for a team mailbox."""
    return f"Debrief — {translate('fr', message)} / {translate('en', message)}: {external_id}"


def planning_problem(*, external_id: str, incident_type: str, closes_at: datetime, timezone: str,
                     problems: Sequence[tuple[str, str, Sequence[str]]]) -> Letter:
    """To the CISM coordinators: part of an incident's plan is missing. `problems` are (kind, group, reasons)."""
    def paragraphs(lang: str) -> list[str]:
        kinds = wording(lang).kinds
        return [
            translate(lang, "Incident %(ref)s (%(incident)s) needs your attention; its window closes %(when)s "
                            "(%(zone)s).", ref=external_id, incident=incident_type,
                      when=when(closes_at, timezone, lang), zone=timezone),
            *(translate(lang, "%(kind)s (%(group)s): %(reasons)s", kind=kinds.get(kind, kind), group=group,
                        reasons=", ".join(translate(lang, REASONS[r]) if r in REASONS else r for r in reasons))
              for kind, group, reasons in problems),
        ]
    return Letter(
        # TRANSLATORS: in a bilingual subject, "Debrief — plan incomplet / plan incomplete: REF".
        subject=_bilingual_subject(N_("plan incomplete"), external_id),
        paragraphs=(*paragraphs("fr"), *paragraphs("en")),
    )


def unassigned(*, what: str, name: str, email: str, phone: str | None, external_id: str) -> Letter:
    """To the CISM coordinators: a participant needs a person to contact them and none could be assigned."""
    message = {
        "escalation": N_("A person involved in incident %(ref)s needs to be contacted by a clinician, and no active "
                         "clinician was found."),
        "booking": N_("A person involved in incident %(ref)s accepted an individual session, and no time was free "
                      "within seven days."),
    }[what]
    contact = f"{name} <{email}>, {phone or '—'}"
    confidential = N_("Confidential: not for the chain of command.")
    return Letter(
        # TRANSLATORS: in a bilingual subject, "Debrief — suivi à organiser / follow-up to arrange: REF".
        subject=_bilingual_subject(N_("follow-up to arrange"), external_id),
        paragraphs=(
            f"{translate('fr', message, ref=external_id)} {contact}",
            f"{translate('en', message, ref=external_id)} {contact}",
            f"{translate('fr', confidential)} / {translate('en', confidential)}",
        ),
    )


# -- layout ---------------------------------------------------------------------------------------


def as_text(letter: Letter) -> str:
    """The plain-text body."""
    parts = list(letter.paragraphs)
    if letter.items:
        parts.append("\n".join(f"{n}. {item}" for n, item in enumerate(letter.items, 1)))
    parts += [f"{link.label}: {link.url}" for link in letter.links]
    if letter.notice:
        parts.append(f"-- \n{letter.notice}")
    return "\n\n".join(parts) + "\n"


def as_html(letter: Letter) -> str:
    """The HTML body: the same content, every value escaped."""
    e = html.escape
    parts = [f"<p>{e(p)}</p>" for p in letter.paragraphs]
    if letter.items:
        parts.append("<ol>" + "".join(f"<li>{e(item)}</li>" for item in letter.items) + "</ol>")
    if letter.links:
        parts.append("<ul>" + "".join(f'<li><a href="{e(link.url)}">{e(link.label)}</a></li>' for link in letter.links)
                     + "</ul>")
    if letter.notice:
        parts.append(f'<hr><p style="font-size:smaller">{e(letter.notice)}</p>')
    return '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>' + "".join(parts) + "</body></html>"



def undelivered(*, what: str, name: str, email: str, phone: str | None, external_id: str) -> Letter:
    """To the CISM coordinators: an escalation or an invitation could not be delivered; someone must reach the person."""
    wording = {
        "escalation": N_("The message asking a clinician to contact a person involved in incident %(ref)s could not "
                         "be delivered. Please make sure a clinician reaches them."),
        "invitation": N_("The invitation of a person involved in incident %(ref)s to their session could not be "
                         "delivered. Please reach them another way."),
    }[what]
    contact = f"{name} <{email}>, {phone or '—'}"
    subject = [translate(lang, "message not delivered") for lang in ("fr", "en")]
    explained = [translate(lang, wording, ref=external_id) for lang in ("fr", "en")]
    confidential = [translate(lang, "Confidential: not for the chain of command.") for lang in ("fr", "en")]
    return Letter(
        subject=f"Debrief — {subject[0]} / {subject[1]}: {external_id}",
        paragraphs=(f"{explained[0]} {contact}", f"{explained[1]} {contact}", f"{confidential[0]} / {confidential[1]}"),
    )
