"""Table configs of the itra paper (see each module's docstring)."""
