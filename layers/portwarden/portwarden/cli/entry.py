"""The console script: ``portwarden --version`` answers before the command line is built.

Building the command line (typer, click, rich, every command's options) costs most of a bare
start-up; the version needs none of it, nor does an SBOM rescan answered from a stored document.
"""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from portwarden import __version__

        sys.stdout.write(f"portwarden {__version__}\n")
        return
    if sys.argv[1:2] == ["sbom"] or sys.argv[2:3] == ["sbom"]:
        # A rescan answered by the document an identical request stored (cli.stored_sbom); any
        # other case, the full command line.
        from portwarden.cli.stored_sbom import print_stored_sbom

        if print_stored_sbom(sys.argv[1:]):
            return
    from portwarden.cli.main import run as run_command_line

    run_command_line()
