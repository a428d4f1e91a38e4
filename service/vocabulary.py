"""The fixed vocabularies of the domain (DESIGN.md section 3)."""

INCIDENT_TYPES = (
    "officer_involved_shooting", "line_of_duty_death", "member_serious_injury", "member_suicide",
    "child_death", "mass_casualty", "hostage_barricade", "violent_assault", "prolonged_rescue", "other",
)
ROLES = ("officer", "dispatcher", "supervisor", "command", "firefighter", "paramedic", "civilian_staff")
EXPOSURES = ("direct", "witness", "support")
LANGUAGES = ("fr", "en")
API_ROLES = ("admin", "coordinator", "dispatch", "supervisor", "facilitator")
INCIDENT_STATUSES = ("received", "planned", "needs_attention", "cancelled")
