"""Grading a submission lesson by lesson: grade.py (grade()), with its intake (submission.py), the repair of broken
files (repair.py), the test runs (run.py, and reporter.py inside each test process), the settings (settings.py),
typed results (results.py), the printed report (report.py), batch grading (batch.py) and Gradescope
(gradescope.py)."""
