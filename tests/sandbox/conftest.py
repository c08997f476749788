# pytest allows ``pytest_plugins`` only in the root conftest, so the fixtures are imported here.
from tests.fixtures.sandbox import *  # noqa: F403
