"""The outbox: every message owed, written in the transaction that makes it owed."""
