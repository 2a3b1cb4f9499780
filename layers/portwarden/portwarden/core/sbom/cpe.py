"""CPE 2.3 candidates for packages that have no better vulnerability key.

OS packages (deb, rpm, apk) are matched through their distro namespace and source package, so they get no
candidates here. Language packages are often only listed in NVD, keyed by CPE; since NVD's vendor and
product names are not derivable with certainty, a few plausible candidates are generated per package
(1 to 3): the ecosystem's own notion of an owner (npm scope, Maven group, Go module host path, Composer
vendor) when there is one, the package name itself, and NVD's frequent ``<product>_project`` vendor.
Packages without a usable version get none: a candidate with version ANY would match every
vulnerability of the product.

Names are written in the CPE 2.3 formatted-string binding (NISTIR 7695 §6.2): lower-cased like the NVD
dictionary, whitespace turned into ``_``, and every printable punctuation character other than ``-``,
``.`` and ``_`` escaped with a backslash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from portwarden.core.ecosystems import is_os_package_type
from portwarden.core.model.package import Package, PackageType

MAX_CANDIDATES = 3

_ANY = "*"
# Punctuation in a formatted-string value: the ASCII ranges ! to /, : to @, [ to `, { to ~.
_PUNCTUATION = r"!-/:-@\[-`{-~"
_VALUE = rf"(?:\*|-|(?:\*|\?+)?(?:[A-Za-z0-9._-]|\\[{_PUNCTUATION}])+(?:\*|\?+)?)"
_LANGUAGE = r"(?:\*|-|[A-Za-z]{2,3}(?:-(?:[A-Za-z]{2}|[0-9]{3}))?)"
_CPE23_RE = re.compile(rf"^cpe:2\.3:[aho*-](?::{_VALUE}){{5}}:{_LANGUAGE}(?::{_VALUE}){{4}}$")

# First labels of Java group ids and Go hosts that name a registry or a country, not an owner.
_GROUP_PREFIXES = frozenset(
    {"org", "com", "net", "io", "edu", "gov", "dev", "de", "uk", "fr", "nl", "ch", "eu"}
)
_SOURCE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "gitee.com", "codeberg.org"})
_GO_UNVERSIONED = frozenset({"", "(devel)"})
GO_STDLIB = "stdlib"
# Last labels of Java group ids that name a kind of artifact rather than a project.
_GENERIC_JAVA_LABELS = frozenset({"commons", "common", "core", "api", "util", "utils", "tools"})


def is_cpe23(text: str) -> bool:
    """Whether ``text`` is a well-formed CPE 2.3 formatted string (``cpe:2.3:part:vendor:…``)."""
    return bool(_CPE23_RE.match(text))


def escape_component(value: str) -> str:
    """One CPE attribute value in formatted-string form; ``*`` (ANY) when nothing printable is left."""
    out: list[str] = []
    for char in value.strip():
        if char.isspace():
            out.append("_")
        elif not char.isascii() or not char.isprintable():
            continue  # a CPE value is printable ASCII only
        elif char.isalnum() or char in "-._":
            out.append(char)
        else:
            out.append("\\" + char)
    escaped = "".join(out)
    if escaped == "-":
        return "\\-"  # a bare hyphen would mean "not applicable"
    return escaped or _ANY


def format_cpe(vendor: str, product: str, version: str, part: str = "a") -> str:
    """``cpe:2.3:a:<vendor>:<product>:<version>:*:*:*:*:*:*:*``; an empty version becomes ANY."""
    fields = [
        escape_component(vendor.lower()),
        escape_component(product.lower()),
        escape_component(version) if version else _ANY,
    ]
    return ":".join(["cpe", "2.3", part, *fields, *([_ANY] * 7)])


def cpe_candidates(package: Package) -> tuple[str, ...]:
    """Up to three CPE 2.3 candidates for ``package``.

    None for OS packages, for nameless packages, and for packages without a usable version: a candidate
    with version ANY would match every vulnerability ever published for the product.
    """
    if is_os_package_type(package.type) or not package.name.strip():
        return ()
    version = _cpe_version(package)
    if not version:
        return ()
    pairs = _vendor_product_pairs(package)
    candidates = (format_cpe(vendor, product, version) for vendor, product in pairs if vendor and product)
    unique = [cpe for cpe in dict.fromkeys(candidates) if is_cpe23(cpe)]
    return tuple(unique[:MAX_CANDIDATES])


def _cpe_version(package: Package) -> str:
    version = package.version.strip()
    if package.type is PackageType.GO_MODULE:
        if version in _GO_UNVERSIONED or version.startswith("devel"):
            return ""
        # NVD writes Go versions without the "v" (modules) or "go" (toolchain) prefix and without
        # "+incompatible".
        version = version.removeprefix("go") if package.name == GO_STDLIB else version
        return _without_v_prefix(version).removesuffix("+incompatible")
    if package.type is PackageType.PHP_COMPOSER:
        return _without_v_prefix(version)
    return version


def _without_v_prefix(version: str) -> str:
    return version[1:] if re.match(r"v[0-9]", version) else version


def _vendor_product_pairs(package: Package) -> Iterable[tuple[str, str]]:
    name = package.name.strip()
    metadata = package.metadata
    if package.type is PackageType.NPM:
        if name.startswith("@") and "/" in name:
            # A scope names its owner; the bare name alone ("core", "cli") is too generic to stand alone.
            scope, _, bare = name.partition("/")
            return [(scope.removeprefix("@"), bare)]
        return [(name, name), (f"{name}_project", name)]
    if package.type is PackageType.JAVA_ARCHIVE:
        return _java_pairs(
            str(metadata.get("group_id") or ""), str(metadata.get("artifact_id") or "") or name
        )
    if package.type is PackageType.GO_MODULE:
        return [("golang", "go")] if name == GO_STDLIB else _go_pairs(name)
    if package.type is PackageType.PHP_COMPOSER:
        vendor, _, project = name.rpartition("/")
        return [(vendor, project), (project, project)] if vendor else [(project, project)]
    if package.type is PackageType.PYTHON:
        product = _python_normal_name(name)
        return [(product, product), (f"python-{product}", product), (f"{product}_project", product)]
    if package.type is PackageType.DOTNET:
        owner = name.split(".", 1)[0]
        return [(owner, name), (name, name)]
    # rust crates and gems: the registry name is the only identity there is.
    return [(name, name), (f"{name}_project", name)]


def _java_pairs(group_id: str, artifact_id: str) -> list[tuple[str, str]]:
    labels = [label for label in group_id.split(".") if label]
    if not labels:
        return [(artifact_id, artifact_id)]
    owner = labels[1] if len(labels) > 1 and labels[0] in _GROUP_PREFIXES else labels[0]
    pairs = [(owner, artifact_id)]
    project = labels[-1]
    if artifact_id.startswith(f"{project}-") and project not in _GENERIC_JAVA_LABELS:
        # org.apache.logging.log4j:log4j-core is listed in NVD as apache:log4j, the project it belongs to.
        pairs.append((owner, project))
    elif "-" in artifact_id:
        # NVD spells many multi-word Java products with underscores (apache:commons_text).
        pairs.append((owner, artifact_id.replace("-", "_")))
    pairs.append((artifact_id, artifact_id))
    return pairs


def _go_pairs(module_path: str) -> list[tuple[str, str]]:
    segments = [segment for segment in module_path.split("/") if segment]
    last = segments[-1] if segments else module_path
    # Major-version suffixes (github.com/foo/bar/v2) are not part of the product's name.
    if re.fullmatch(r"v[0-9]+", last) and len(segments) > 1:
        segments = segments[:-1]
        last = segments[-1]
    if len(segments) >= 3 and segments[0] in _SOURCE_HOSTS:
        return [(segments[1], segments[2]), (segments[2], segments[2])]
    if len(segments) >= 3 and segments[0] == "golang.org" and segments[1] == "x":
        return [("golang", segments[2])]
    if len(segments) >= 2:
        owner = segments[0].split(".")[0]
        return [(owner, last), (last, last)]
    return [(last, last)]


def _python_normal_name(name: str) -> str:
    # PEP 503 normalization: runs of -, _ and . are one hyphen, case-insensitive.
    return re.sub(r"[-_.]+", "-", name).lower()
