import pytest

from meta.helpers import copy_of_repository, write_stubs


@pytest.fixture(scope="session")
def stubs(tmp_path_factory):
    """A folder named exercises holding the pristine stubs (exercises/ itself may hold a student's work)."""
    return write_stubs(tmp_path_factory.mktemp("stubs") / "exercises")


@pytest.fixture(scope="session")
def student_copy(tmp_path_factory):
    """A copy of the repository as a student first has it: exercises/ holds the pristine stubs."""
    return copy_of_repository(tmp_path_factory.mktemp("student") / "kata")
