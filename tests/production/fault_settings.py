"""The production settings, plus one URL that fails: how the production-profile test sees the 500 page.

Only the web process of that test loads this module; the image leaves tests/ out (.dockerignore), so
no deployment can serve the failing URL.
"""

from backoffice.settings import *  # noqa: F403

ROOT_URLCONF = "tests.production.fault_urls"
