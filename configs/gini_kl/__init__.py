"""Table configs of the gini_kl paper (see each module's docstring)."""
