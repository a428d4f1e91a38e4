"""Follow-ups: what each participant and facilitator is told, when, and what participants answer."""
