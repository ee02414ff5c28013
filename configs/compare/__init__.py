"""Beyond the papers: every loss under one protocol (see each module's docstring)."""
