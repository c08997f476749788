"""The production profile's fixtures: the browser of the e2e suite."""

from tests.e2e.conftest import browser

__all__ = ["browser"]
