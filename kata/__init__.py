"""Tooling of the kata: the lesson manifest, loading an implementation, and gradient checking."""
