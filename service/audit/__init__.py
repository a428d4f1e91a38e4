"""The audit log of reads of participant-level data."""
