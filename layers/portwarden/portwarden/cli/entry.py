"""The console script: ``portwarden --version`` answers before the command line is built.

Building the command line (typer, click, rich, every command's options) costs most of a bare
start-up; the version needs none of it, nor does a plain SBOM request (cli.stored_sbom).
"""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from portwarden import __version__

        sys.stdout.write(f"portwarden {__version__}\n")
        return
    if sys.argv[1:2] == ["sbom"] or sys.argv[2:3] == ["sbom"]:
        # A plain document request: the document an identical request stored, else the analysis,
        # without building the command line (cli.stored_sbom); any other case, the full command line.
        from portwarden.cli.stored_sbom import answer_plain_sbom

        if answer_plain_sbom(sys.argv[1:]):
            return
    from portwarden.cli.main import run as run_command_line

    run_command_line()
