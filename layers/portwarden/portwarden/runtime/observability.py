"""The Powertools logger, tracer and metrics every Lambda handler shares.

They are module singletons so that one container configures them once. Core and adapter modules
keep using ``logging.getLogger(__name__)``: their records reach the ``portwarden`` logger, which is
given the Powertools JSON handler here, so Lambda logs are uniform without the core importing
Powertools.

The tracer is Powertools' X-Ray tracer only when tracing is on (the template's ``Tracing``
parameter). Powertools' Tracer imports the X-Ray SDK, and with it botocore's session, client and
documentation modules, even when it is disabled: about 200 ms of every cold start. With tracing off
handlers are decorated by :class:`UntracedTracer` instead, which imports nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from portwarden.runtime.observability_settings import ObservabilityFields

PACKAGE_LOGGER_NAME = "portwarden"


class HandlerTracer(Protocol):
    """What handlers use of a tracer: the decorator that opens a segment per invocation."""

    def capture_lambda_handler(self, lambda_handler: Callable[[Any, Any], Any]) -> Callable[..., Any]: ...


class UntracedTracer:
    """The tracer when tracing is off: the handler is returned as it is."""

    def capture_lambda_handler(self, lambda_handler: Callable[[Any, Any], Any]) -> Callable[..., Any]:
        return lambda_handler


_TRUTHY = {"1", "true", "yes", "on", "y", "t"}


def tracing_enabled(environment: Mapping[str, str] | None = None) -> bool:
    """Tracing runs where Powertools would trace: inside Lambda (not SAM local or Chalice), and not
    turned off by ``POWERTOOLS_TRACE_DISABLED`` (which the template sets from its ``Tracing``)."""
    environment = os.environ if environment is None else environment
    if environment.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return False
    if not environment.get("LAMBDA_TASK_ROOT"):
        return False
    return not (environment.get("AWS_SAM_LOCAL") or environment.get("AWS_CHALICE_CLI_MODE"))


def build_tracer(service: str, *, enabled: bool) -> HandlerTracer:
    if not enabled:
        return UntracedTracer()
    from aws_lambda_powertools import Tracer

    tracer: HandlerTracer = Tracer(service=service)
    return tracer


settings = ObservabilityFields.from_environment()

logger = Logger(service=settings.service_name, level=settings.log_level)
tracer = build_tracer(settings.service_name, enabled=tracing_enabled())
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)

# The package logger must exist before the copy: Powertools only reconfigures registered loggers.
# When the service is itself named "portwarden" the Powertools logger *is* the package logger and
# the copy is a no-op, since package modules already propagate to it.
logging.getLogger(PACKAGE_LOGGER_NAME)
copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE_LOGGER_NAME})
