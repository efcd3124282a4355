"""What the lesson tests run on: the pytest plugin (--impl, the impl and ref fixtures, the lesson markers) and the
one gradient checker."""
