"""What only an instructor runs, and what the students' edition leaves out: the release of that edition and the
similarity report of a class's submissions."""
