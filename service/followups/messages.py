"""The words of every message Debrief sends, in French and English, as plain text and HTML.

Pure code: the caller passes every fact (times in UTC with the zone to show them in, links
already signed). Participants' messages carry the consent notice and their decline and
opt-out links; facilitators' and coordinators' messages carry no participant data except an
escalation, which goes to one clinician (or, failing one, the CISM coordinators) and to no one else.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from service.calendars.render import CLOCK_FACES, WORDINGS, language_of
from service.i18n import translate

LANGUAGES = ("en", "fr")
NBSP = "\u00a0"

DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
}

# PC-PTSD-5 (Prins et al., 2016; US National Center for PTSD, public domain), about this incident.
SCREEN_ITEMS = {
    "en": (
        "had nightmares about the event or thought about it when you did not want to?",
        "tried hard not to think about the event or went out of your way to avoid situations that reminded you of it?",
        "been constantly on guard, watchful, or easily startled?",
        "felt numb or detached from people, activities, or your surroundings?",
        "felt guilty or unable to stop blaming yourself or others for the event or any problems it may have caused?",
    ),
    "fr": (
        "fait des cauchemars à propos de l’événement, ou pensé à l’événement alors que vous ne le vouliez pas?",
        "fait de grands efforts pour ne pas penser à l’événement, ou évité des situations qui vous le rappelaient?",
        "été constamment sur vos gardes, aux aguets, ou avez-vous sursauté facilement?",
        "ressenti de l’engourdissement ou du détachement envers les autres, vos activités ou votre entourage?",
        "ressenti de la culpabilité, ou été incapable de cesser de vous blâmer ou de blâmer d’autres personnes pour "
        "l’événement ou pour les problèmes qu’il a pu causer?",
    ),
}
SCREEN_INTRO = {"en": "In the past month, have you…", "fr": "Au cours du dernier mois, avez-vous…"}

CONSENT = {
    "en": (
        "Taking part is voluntary, and saying no has no consequence for you. Nothing said in a session is recorded, "
        "and neither your participation nor your answers are ever shared with your supervisors or your chain of "
        "command. You can stop all further messages about this incident with the opt-out link below."
    ),
    "fr": (
        "La participation est volontaire, et refuser n’a aucune conséquence pour vous. Rien de ce qui se dit en "
        "séance n’est consigné, et ni votre participation ni vos réponses ne sont jamais communiquées à vos "
        "supérieurs ou à votre hiérarchie. Vous pouvez cesser de recevoir tout message au sujet de cet événement "
        "avec le lien de désinscription ci-dessous."
    ),
}

REASONS = {
    "en": {
        "window_closed": "the time window has closed",
        "language_not_covered": "no facilitator speaks the group's language",
        "region_not_covered": "no facilitator serves the region",
        "all_candidates_conflicted": "every candidate has a conflict of interest",
        "no_clinician_available": "no clinician is available",
        "not_enough_peers": "not enough peer supporters are available",
        "no_common_slot": "the team has no common free time in the window",
        "no_replacement": "a facilitator left and no replacement was found",
        "cancelled_by_coordinator": "the session was cancelled by a coordinator",
        "planning_contention": "planning was interrupted by concurrent changes",
    },
    "fr": {
        "window_closed": "la fenêtre de temps est fermée",
        "language_not_covered": "aucun intervenant ne parle la langue du groupe",
        "region_not_covered": "aucun intervenant ne dessert la région",
        "all_candidates_conflicted": "tous les candidats sont en conflit d’intérêts",
        "no_clinician_available": "aucun clinicien n’est disponible",
        "not_enough_peers": "pas assez de pairs aidants disponibles",
        "no_common_slot": "l’équipe n’a aucune plage libre commune dans la fenêtre",
        "no_replacement": "un intervenant s’est retiré et aucun remplaçant n’a été trouvé",
        "cancelled_by_coordinator": "la séance a été annulée par un coordonnateur",
        "planning_contention": "la planification a été interrompue par des modifications simultanées",
    },
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


def language(code: str | Iterable[str]) -> str:
    """fr or en: a participant's language, or a facilitator's first language."""
    if isinstance(code, str):
        return code if code in LANGUAGES else "en"
    return language_of(code)


def when(moment: datetime, zone: str, lang: str) -> str:
    """A date and time in words, in the given zone: "Tuesday 24 November 2026, 09:00"."""
    local = moment.astimezone(ZoneInfo(zone))
    day = DAYS[lang][local.weekday()]
    month = MONTHS[lang][local.month - 1]
    clock = CLOCK_FACES[lang][local.hour * 60 + local.minute]
    if lang == "fr":
        return f"{day} {local.day}{NBSP}{month} {local.year}, à {clock}"
    return f"{day} {local.day} {month} {local.year}, {clock}"


def _clock(moment: datetime, zone: str, lang: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return CLOCK_FACES[lang][local.hour * 60 + local.minute]


def describe(session: SessionFacts, lang: str, *, with_agenda: bool = False) -> list[str]:
    """The session in a few lines: what, when (local time), how long, where."""
    words = WORDINGS[lang]
    kind = words.kinds.get(session.kind, session.kind)
    minutes = int((session.ends_at - session.starts_at).total_seconds()) // 60
    place = words.in_person.format(region=session.region) if session.mode == "in_person" else words.virtual
    if lang == "fr":
        lines = [f"{kind}{NBSP}: {when(session.starts_at, session.timezone, lang)} "
                 f"(heure de {session.timezone}), {minutes}{NBSP}min, {place}."]
    else:
        lines = [f"{kind}: {when(session.starts_at, session.timezone, lang)} ({session.timezone} time), "
                 f"{minutes} min, {place}."]
    if with_agenda and session.agenda:
        lines.append(words.agenda + " " + "; ".join(
            f"{_clock(start, session.timezone, lang)} {words.phases.get(phase, phase)} ({minutes_}{NBSP if lang == 'fr' else ' '}min)"
            for phase, start, minutes_ in session.agenda
        ) + ".")
    return lines


# -- participants ---------------------------------------------------------------------------------


def invitation(lang: str, session: SessionFacts, links: ResponseLinks, *, change: str = "new") -> Letter:
    """An invitation to a session; `change` is new, moved or cancelled (or removed from it)."""
    details = describe(session, lang)
    if lang == "fr":
        if change == "cancelled":
            return Letter(
                subject="Séance annulée",
                paragraphs=("La séance suivante, à laquelle vous étiez invité(e), n’aura pas lieu pour vous :",
                            *details, "Si une autre séance vous est proposée, vous recevrez une nouvelle invitation."),
                links=(Link("Ne plus recevoir de messages", links.opt_out),), notice=CONSENT[lang],
            )
        opening = ("La séance à laquelle vous êtes invité(e) a été modifiée. Voici le nouvel horaire :"
                   if change == "moved" else
                   "À la suite de l’événement critique auquel vous avez été exposé(e), l’équipe de soutien par les "
                   "pairs vous invite à la séance suivante :")
        return Letter(
            subject="Séance modifiée" if change == "moved" else "Invitation à une séance de soutien",
            paragraphs=(opening, *details,
                        "Le calendrier joint ajoute la séance à votre agenda. Dites-nous si vous y serez :"),
            links=(Link("Je serai présent(e)", links.accept), Link("Je ne participerai pas", links.decline),
                   Link("Ne plus recevoir de messages", links.opt_out)),
            notice=CONSENT[lang],
        )
    if change == "cancelled":
        return Letter(
            subject="Session cancelled",
            paragraphs=("The following session you were invited to will not take place for you:", *details,
                        "If another session is offered to you, you will receive a new invitation."),
            links=(Link("Stop all messages", links.opt_out),), notice=CONSENT[lang],
        )
    opening = ("The session you are invited to has changed. Here is the new schedule:" if change == "moved" else
               "After the critical incident you were involved in, the peer support team invites you to this session:")
    return Letter(
        subject="Session changed" if change == "moved" else "Invitation to a support session",
        paragraphs=(opening, *details, "The attached calendar file adds the session to your calendar. Let us know "
                    "whether you will attend:"),
        links=(Link("I will attend", links.accept), Link("I will not attend", links.decline),
               Link("Stop all messages", links.opt_out)),
        notice=CONSENT[lang],
    )


def offer(lang: str, links: ResponseLinks, *, peer: str, clinician: str) -> Letter:
    """The offer of an individual session with a peer or a clinician, the participant's choice."""
    if lang == "fr":
        return Letter(
            subject="Une rencontre individuelle, si vous le souhaitez",
            paragraphs=(
                "En plus de la séance de groupe, vous pouvez avoir une rencontre individuelle confidentielle de "
                "60 minutes dans les sept jours, avec un pair aidant ou avec un clinicien, selon votre préférence.",
                "Choisissez ci-dessous; nous vous enverrons l’heure et le lieu.",
            ),
            links=(Link("Rencontrer un pair aidant", peer), Link("Rencontrer un clinicien", clinician),
                   Link("Non merci", links.decline), Link("Ne plus recevoir de messages", links.opt_out)),
            notice=CONSENT[lang],
        )
    return Letter(
        subject="An individual session, if you would like one",
        paragraphs=(
            "Besides the group session, you can have a confidential 60-minute individual session within the next "
            "seven days, with a peer supporter or with a clinician, whichever you prefer.",
            "Choose below and we will send you the time and place.",
        ),
        links=(Link("Meet a peer supporter", peer), Link("Meet a clinician", clinician),
               Link("No, thank you", links.decline), Link("Stop all messages", links.opt_out)),
        notice=CONSENT[lang],
    )


def checkin(lang: str, links: ResponseLinks) -> Letter:
    """The check-in two days after the group session."""
    if lang == "fr":
        return Letter(
            subject="Comment allez-vous?",
            paragraphs=(
                "Quelques jours ont passé depuis la séance de groupe. Il est normal de ressentir encore de la fatigue, "
                "de l’irritabilité ou des troubles du sommeil; ces réactions diminuent en général d’elles-mêmes.",
                "Si vous souhaitez parler à quelqu’un, un clinicien de l’équipe peut vous joindre, en toute "
                "confidentialité.",
            ),
            links=(Link("Je voudrais qu’on me contacte", links.contact_me), Link("Tout va bien, merci", links.all_fine),
                   Link("Ne plus recevoir de messages", links.opt_out)),
            notice=CONSENT[lang],
        )
    return Letter(
        subject="How are you doing?",
        paragraphs=(
            "A few days have passed since the group session. It is normal to still feel tired or irritable or to "
            "sleep poorly; these reactions usually fade on their own.",
            "If you would like to talk to someone, a clinician of the team can contact you, in confidence.",
        ),
        links=(Link("I would like to be contacted", links.contact_me), Link("I am fine, thank you", links.all_fine),
               Link("Stop all messages", links.opt_out)),
        notice=CONSENT[lang],
    )


def screening(lang: str, links: ResponseLinks) -> Letter:
    """The 30-day check-in with the five PC-PTSD-5 questions."""
    if lang == "fr":
        return Letter(
            subject="Un mois après l’événement : cinq questions",
            paragraphs=(
                "Un mois a passé depuis l’événement. Ces cinq questions, auxquelles on répond par oui ou par non, "
                "aident à savoir si un soutien de plus pourrait vous être utile. Vos réponses ne sont vues que par "
                "l’équipe clinique.",
                SCREEN_INTRO[lang],
            ),
            items=SCREEN_ITEMS[lang],
            links=(Link("Répondre", links.action("answer")), Link("Je voudrais qu’on me contacte", links.contact_me),
                   Link("Ne plus recevoir de messages", links.opt_out)),
            notice=CONSENT[lang],
        )
    return Letter(
        subject="One month after the incident: five questions",
        paragraphs=(
            "A month has passed since the incident. These five yes-or-no questions help tell whether more support "
            "could help you. Only the clinical team sees your answers.",
            SCREEN_INTRO[lang],
        ),
        items=SCREEN_ITEMS[lang],
        links=(Link("Answer", links.action("answer")), Link("I would like to be contacted", links.contact_me),
               Link("Stop all messages", links.opt_out)),
        notice=CONSENT[lang],
    )


def booking_pending(lang: str, links: ResponseLinks) -> Letter:
    """To a participant whose individual session could not be booked at once."""
    if lang == "fr":
        return Letter(
            subject="Votre rencontre individuelle",
            paragraphs=("Merci de votre réponse. Aucune plage n’était libre dans les sept prochains jours; un "
                        "coordonnateur de l’équipe vous contactera pour fixer la rencontre.",),
            links=(Link("Ne plus recevoir de messages", links.opt_out),), notice=CONSENT[lang],
        )
    return Letter(
        subject="Your individual session",
        paragraphs=("Thank you for your answer. No time was free in the next seven days; a coordinator of the "
                    "team will contact you to arrange the session.",),
        links=(Link("Stop all messages", links.opt_out),), notice=CONSENT[lang],
    )


# -- facilitators ---------------------------------------------------------------------------------


def assignment(lang: str, session: SessionFacts, *, change: str = "new", reference: str) -> Letter:
    """A facilitator's assignment; `change` is new, moved, cancelled (or taken off the team) or reminder."""
    details = describe(session, lang, with_agenda=change != "cancelled")
    if lang == "fr":
        subjects = {"new": "Nouvelle affectation", "moved": "Séance modifiée", "cancelled": "Séance annulée",
                    "reminder": "Rappel : séance demain"}
        openings = {
            "new": "Vous êtes affecté(e) à la séance suivante :",
            "moved": "Une séance à laquelle vous êtes affecté(e) a été modifiée :",
            "cancelled": "La séance suivante n’est plus à votre agenda (annulée, ou confiée à un autre intervenant) :",
            "reminder": "Rappel de votre séance de demain :",
        }
        closing = ("Votre flux de calendrier est à jour. Si vous ne pouvez pas l’animer, déclinez-la dans Debrief : "
                   "un remplaçant sera cherché automatiquement.")
        ref = f"Référence{NBSP}: {reference}"
    else:
        subjects = {"new": "New assignment", "moved": "Session changed", "cancelled": "Session cancelled",
                    "reminder": "Reminder: session tomorrow"}
        openings = {
            "new": "You are assigned to this session:",
            "moved": "A session you are assigned to has changed:",
            "cancelled": "This session is no longer on your schedule (cancelled, or given to another facilitator):",
            "reminder": "A reminder of your session tomorrow:",
        }
        closing = ("Your calendar feed is up to date. If you cannot lead it, decline it in Debrief and a replacement "
                   "will be found automatically.")
        ref = f"Reference: {reference}"
    paragraphs = (openings[change], *details, *(() if change == "cancelled" else (closing,)), ref)
    return Letter(subject=subjects[change], paragraphs=paragraphs)


def escalation(lang: str, *, reason: str, name: str, email: str, phone: str | None, participant_language: str,
               incident_type: str, occurred_at: datetime, timezone: str) -> Letter:
    """To the clinician who must contact a participant (a positive screen or a request for contact)."""
    if lang == "fr":
        why = {"positive_screen": "un dépistage PC-PTSD-5 positif (3 réponses « oui » ou plus) au suivi d’un mois",
               "contact_requested": "une demande de contact de la personne elle-même"}[reason]
        return Letter(
            subject="Suivi clinique à faire",
            paragraphs=(
                f"Une personne touchée par un événement critique ({incident_type}, {when(occurred_at, timezone, lang)}) "
                f"doit être contactée par un clinicien, à la suite d’{why}.",
                f"Nom{NBSP}: {name}", f"Courriel{NBSP}: {email}", f"Téléphone{NBSP}: {phone or '—'}",
                f"Langue{NBSP}: {participant_language}",
                "Ces renseignements sont confidentiels : ils ne doivent pas être transmis à la hiérarchie de la personne.",
            ),
        )
    why = {"positive_screen": "a positive PC-PTSD-5 screen (3 or more \u201cyes\u201d answers) at the one-month check-in",
           "contact_requested": "the person's own request to be contacted"}[reason]
    return Letter(
        subject="Clinical follow-up needed",
        paragraphs=(
            f"A person involved in a critical incident ({incident_type}, {when(occurred_at, timezone, lang)}) needs to "
            f"be contacted by a clinician, after {why}.",
            f"Name: {name}", f"Email: {email}", f"Phone: {phone or '—'}", f"Language: {participant_language}",
            "This information is confidential: it must not be passed on to the person's chain of command.",
        ),
    )


def facilitator_links(lang: str, *, session_url: str | None, own_url: str) -> tuple[Link, ...]:
    """The links of a facilitator's message: the session's page (none once they are off it) and their own page."""
    session = () if session_url is None else (
        Link(translate(lang, "See this session, or say you cannot lead it"), session_url),)
    return (*session, Link(translate(lang, "Your page (upcoming sessions, time off, calendar)"), own_url))


# -- coordinators (bilingual: a team mailbox has no one language) -----------------------------------


def planning_problem(*, external_id: str, incident_type: str, closes_at: datetime, timezone: str,
                     problems: Sequence[tuple[str, str, Sequence[str]]]) -> Letter:
    """To the CISM coordinators: part of an incident's plan is missing. `problems` are (kind, group, reasons)."""
    def lines(lang: str) -> list[str]:
        words = WORDINGS[lang]
        return [
            f"{words.kinds.get(kind, kind)} ({group}){NBSP if lang == 'fr' else ''}: "
            + ", ".join(REASONS[lang].get(r, r) for r in reasons)
            for kind, group, reasons in problems
        ]
    return Letter(
        subject=f"Debrief — plan incomplet / plan incomplete: {external_id}",
        paragraphs=(
            f"L’incident {external_id} ({incident_type}) a besoin de votre attention; sa fenêtre se ferme le "
            f"{when(closes_at, timezone, 'fr')} ({timezone}).",
            *lines("fr"),
            f"Incident {external_id} ({incident_type}) needs your attention; its window closes "
            f"{when(closes_at, timezone, 'en')} ({timezone}).",
            *lines("en"),
        ),
    )


def unassigned(*, what: str, name: str, email: str, phone: str | None, external_id: str) -> Letter:
    """To the CISM coordinators: a participant needs a person to contact them and none could be assigned."""
    fr, en = {
        "escalation": ("doit être contactée par un clinicien, mais aucun clinicien actif n’a été trouvé",
                       "needs to be contacted by a clinician, and no active clinician was found"),
        "booking": ("a accepté une rencontre individuelle, mais aucune plage n’était libre dans les sept jours",
                    "accepted an individual session, and no time was free within seven days"),
    }[what]
    contact = f"{name} <{email}>, {phone or '—'}"
    return Letter(
        subject=f"Debrief — suivi à organiser / follow-up to arrange: {external_id}",
        paragraphs=(
            f"Une personne touchée par l’incident {external_id} {fr}. {contact}",
            f"A person involved in incident {external_id} {en}. {contact}",
            "Confidentiel : ne pas transmettre à la hiérarchie. / Confidential: not for the chain of command.",
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
    from service.i18n import N_, translate

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
