"""The ecosystem descriptor is the one table: every module that needs a per-type fact reads it there."""

from __future__ import annotations

import pytest

from portwarden.api.shapes import ANCHORE_PACKAGE_TYPES
from portwarden.core.analyzers._purl_lang import purl
from portwarden.core.ecosystems import ECOSYSTEMS, OS_PACKAGE_TYPES, ecosystem, is_os_package_type
from portwarden.core.model.package import Package, PackageType
from portwarden.core.policy.gates import _support as gate_support
from portwarden.core.services.sync_feeds import OSV_ECOSYSTEMS
from portwarden.core.vulns.feeds.naming import osv_namespace
from portwarden.core.vulns.matcher import matcher_name
from portwarden.core.vulns.namespaces import language_namespace
from portwarden.core.vulns.versions.registry import (
    COMPARATORS,
    comparator_key_for_osv_ecosystem,
    comparator_key_for_package_type,
)


def test_every_package_type_has_one_descriptor() -> None:
    assert set(ECOSYSTEMS) == set(PackageType)
    assert {PackageType.DEB, PackageType.APK, PackageType.RPM} == OS_PACKAGE_TYPES
    assert ecosystem("no-such-type") is None and not is_os_package_type("no-such-type")


@pytest.mark.parametrize("package_type", list(PackageType), ids=lambda t: t.value)
def test_every_consumer_reads_the_descriptor(package_type: PackageType) -> None:
    described = ECOSYSTEMS[package_type]
    assert described.comparator in COMPARATORS
    assert comparator_key_for_package_type(package_type.value) == described.comparator
    assert language_namespace(package_type) == described.namespace
    assert (described.namespace is None) == described.os_package
    assert gate_support.is_os_package_type(package_type.value) == described.os_package
    assert ANCHORE_PACKAGE_TYPES[package_type.value] == described.anchore_type
    package = Package(name="demo", version="1.0", type=package_type, found_by="test")
    assert matcher_name(package) == described.matcher
    assert (purl(package_type, "demo", "1.0") or "").startswith(f"pkg:{described.purl_type}/demo@")
    if described.feed_ecosystem is not None:
        assert described.feed_ecosystem in OSV_ECOSYSTEMS
        namespace = osv_namespace(described.feed_ecosystem)
        assert namespace is not None
        assert (namespace.namespace, namespace.version_format) == (described.namespace, described.comparator)
        assert comparator_key_for_osv_ecosystem(described.feed_ecosystem) == described.comparator
    else:
        assert described.os_package


def test_compiled_in_ecosystems() -> None:
    assert {t for t, e in ECOSYSTEMS.items() if e.compiled_in} == {
        PackageType.GO_MODULE,
        PackageType.RUST_CRATE,
    }
