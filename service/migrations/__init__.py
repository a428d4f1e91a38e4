"""Alembic migrations of the Debrief schema."""
