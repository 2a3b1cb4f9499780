"""The REST API: one Powertools resolver, served by the API Lambda and by ``portwarden serve``."""

from portwarden.api.deferred_imports import defer_package_init

API_VERSION = "1.0.0"
"""Version of the HTTP contract (routes, bodies, status codes); bumped independently of the package."""

# Before any module of the API imports Powertools' event handler: only the REST resolver is loaded,
# with the event classes it reads (not those of every event source), see
# ``portwarden.api.deferred_imports``.
defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")
