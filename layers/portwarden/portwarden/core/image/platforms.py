"""Platform strings (``OS/ARCH[/VARIANT]``) checked against the values images are published for.

The OCI image index takes its ``os`` and ``architecture`` values from Go's ``GOOS`` and ``GOARCH``;
variants are those the OCI spec lists and container runtimes select on (ARM generations, x86-64
micro-architecture levels, POWER generations, RISC-V profiles). A request for anything else can
never match an image, so it is refused up front, saying what is accepted, instead of starting work
that must fail.
"""

from __future__ import annotations

from portwarden.core.errors import InvalidPlatformError
from portwarden.core.image.manifest import Platform

KNOWN_OPERATING_SYSTEMS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "illumos",
        "ios",
        "js",
        "linux",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
    }
)
KNOWN_ARCHITECTURES = frozenset(
    {
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mipsle",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "wasm",
    }
)
VARIANTS_BY_ARCHITECTURE: dict[str, frozenset[str]] = {
    "arm": frozenset({"v5", "v6", "v7", "v8"}),
    "arm64": frozenset(
        {"v8", *(f"v8.{minor}" for minor in range(10)), "v9", *(f"v9.{minor}" for minor in range(6))}
    ),
    "amd64": frozenset({"v1", "v2", "v3", "v4"}),
    "ppc64le": frozenset({"power8", "power9", "power10"}),
    "riscv64": frozenset({"rva20u64", "rva22u64", "rva23u64"}),
}
# Longest accepted text: a safety bound before the string is split or echoed in an error.
_MAX_PLATFORM_LENGTH = 64


def parse_known_platform(text: str) -> Platform:
    """``linux/arm64/v8`` → Platform, or InvalidPlatformError naming the part that is wrong."""
    if len(text) > _MAX_PLATFORM_LENGTH:
        raise InvalidPlatformError(f"invalid platform: longer than {_MAX_PLATFORM_LENGTH} characters")
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidPlatformError(f"invalid platform {text!r}: expected OS/ARCH or OS/ARCH/VARIANT")
    os_name, architecture = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    if os_name not in KNOWN_OPERATING_SYSTEMS:
        known = ", ".join(sorted(KNOWN_OPERATING_SYSTEMS))
        raise InvalidPlatformError(f"invalid platform {text!r}: unknown OS {os_name!r} (known: {known})")
    if architecture not in KNOWN_ARCHITECTURES:
        known = ", ".join(sorted(KNOWN_ARCHITECTURES))
        raise InvalidPlatformError(
            f"invalid platform {text!r}: unknown architecture {architecture!r} (known: {known})"
        )
    if variant is not None:
        variants = VARIANTS_BY_ARCHITECTURE.get(architecture, frozenset())
        if variant not in variants:
            accepted = ", ".join(sorted(variants)) if variants else "none"
            raise InvalidPlatformError(
                f"invalid platform {text!r}: unknown {architecture} variant {variant!r} (known: {accepted})"
            )
    return Platform(os=os_name, architecture=architecture, variant=variant)
