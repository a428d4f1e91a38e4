"""Staff accounts of the console: sign-in by emailed one-time links, server-side sessions, page access."""
