"""The course itself: where things are, the lessons, the contract's names, loading an implementation, the
exercises and how far a student got, and where an error comes from. Every other package builds on this one."""
