"""Table configs of the sigma2r paper (see each module's docstring)."""
