"""Training a model, playing with it and looking inside it: train.py, play.py, the default recipe, checkpoints,
pictures in the terminal and in files."""
