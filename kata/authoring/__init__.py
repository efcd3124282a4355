"""What is generated from one source: exercises/ from solutions/, the notebooks from the lesson texts, the lesson
tables from manifest.toml. Nothing here is run while grading."""
