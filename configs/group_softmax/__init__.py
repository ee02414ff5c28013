"""Table configs of the group_softmax paper (see each module's docstring)."""
