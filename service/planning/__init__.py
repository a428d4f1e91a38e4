"""Pure planning rules: groups, agendas, eligibility and the planner. No I/O, no clock, no framework."""

from service.planning.agenda import build_agenda, session_minutes, session_window, team_requirements
from service.planning.batch import plan_batch
from service.planning.eligibility import ineligibility_reasons
from service.planning.groups import split_into_groups
from service.planning.planner import (
    find_replacement, individual_ref, individual_starts, plan_incident, plan_individual, plan_surge, session_ref,
)
from service.planning.policy import PlanningPolicy
from service.planning.pool import FacilitatorPool
from service.planning.schedule import Schedule
from service.planning.types import (
    FACILITATOR_REASONS, GROUP_REASONS, AgendaItem, Booking, Certification, FacilitatorProfile, Group,
    IncidentFacts, IncidentPlan, Interval, Participant, PlannedSession, Problem, TeamRequirement, WeeklyWindow,
)

__all__ = [
    "AgendaItem", "Booking", "Certification", "FACILITATOR_REASONS", "FacilitatorPool", "FacilitatorProfile",
    "GROUP_REASONS", "Group", "IncidentFacts", "IncidentPlan", "Interval", "Participant", "PlannedSession",
    "PlanningPolicy", "Problem", "Schedule", "TeamRequirement", "WeeklyWindow", "build_agenda",
    "find_replacement", "individual_ref", "individual_starts", "ineligibility_reasons", "plan_batch", "plan_incident",
    "plan_individual", "plan_surge", "session_minutes", "session_ref", "session_window", "split_into_groups", "team_requirements",
]
