"""The cloud code the API test server runs (``--cloud tests/cloud_app``): a package, whose modules
register functions and triggers on classes named ``Cloud*`` so that other tests are unaffected."""

from . import analytics, data_api, functions, jobs, livequery, triggers, users_files  # noqa: F401 - registering is the import's effect
