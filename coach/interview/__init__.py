"""The interview at work: `Interview` (the one door for the UI and the CLI), the panel's state machine, each
panelist's prompt thread, reading ahead while the candidate types, personas and scenarios, stored sessions."""
