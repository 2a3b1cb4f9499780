"""Version comparison for every supported ecosystem, and the constraints the matcher evaluates.

Usage::

    comparator = get_comparator(comparator_key_for_package_type("deb"))   # the dpkg comparator
    comparator.compare("1:2.0-1", "2.0-1")                               # 1
    parse_constraint(">= 1.0, < 2.0 || = 3.0").satisfied_by("1.5", comparator)
    in_osv_range("1.5", [{"introduced": "0"}, {"fixed": "2.0"}], comparator)

Comparators never raise on odd input; see ``docs/versions.md`` for each ecosystem's rules and the
fallback order of versions an ecosystem cannot parse.
"""

from portwarden.core.vulns.versions.base import BoundAwareComparator, Comparator
from portwarden.core.vulns.versions.constraints import (
    Comparison,
    Constraint,
    OsvEvent,
    in_osv_range,
    parse_constraint,
)
from portwarden.core.vulns.versions.npm_ranges import parse_npm_range
from portwarden.core.vulns.versions.registry import (
    COMPARATORS,
    OSV_ECOSYSTEM_COMPARATORS,
    PACKAGE_TYPE_COMPARATORS,
    comparator_key_for_osv_ecosystem,
    comparator_key_for_package_type,
    get_comparator,
)

__all__ = [
    "COMPARATORS",
    "OSV_ECOSYSTEM_COMPARATORS",
    "PACKAGE_TYPE_COMPARATORS",
    "BoundAwareComparator",
    "Comparator",
    "Comparison",
    "Constraint",
    "OsvEvent",
    "comparator_key_for_osv_ecosystem",
    "comparator_key_for_package_type",
    "get_comparator",
    "in_osv_range",
    "parse_constraint",
    "parse_npm_range",
]
