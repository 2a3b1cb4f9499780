"""The Powertools logger, tracer and metrics every Lambda handler shares.

They are module singletons so that one container configures them once. Core and adapter modules
keep using ``logging.getLogger(__name__)``: their records reach the ``portwarden`` logger, which is
given the Powertools JSON handler here, so Lambda logs are uniform without the core importing
Powertools.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from portwarden.runtime.settings import ObservabilitySettings

PACKAGE_LOGGER_NAME = "portwarden"

settings = ObservabilitySettings()

logger = Logger(service=settings.service_name, level=settings.log_level)
tracer = Tracer(service=settings.service_name)
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)

# The package logger must exist before the copy: Powertools only reconfigures registered loggers.
# When the service is itself named "portwarden" the Powertools logger *is* the package logger and
# the copy is a no-op, since package modules already propagate to it.
logging.getLogger(PACKAGE_LOGGER_NAME)
copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER_NAME})
