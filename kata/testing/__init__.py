"""What the lesson tests run on: the pytest plugin (--impl, the impl and expect fixtures, the variants, the lesson
markers) and the one gradient checker."""
