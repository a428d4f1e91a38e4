"""Debrief: schedules critical-incident stress debriefings for first responders.

Nothing is imported here: `debrief serve` must configure prometheus-client's
multiprocess mode before that library is first imported.
"""
