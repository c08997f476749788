# The sandbox fixtures come from tests.fixtures.sandbox, loaded for the whole suite by tests/conftest.py.
