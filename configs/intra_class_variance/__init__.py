"""Table configs of the intra_class_variance paper (see each module's docstring)."""
