"""The console script: ``portwarden --version`` answers before the command line is built.

Building the command line (typer, click, rich, every command's options) costs most of a bare
start-up; the version needs none of it, nor does a plain SBOM request (cli.stored_sbom).
"""

from __future__ import annotations

import gc
import os
import sys

from portwarden import startup

SBOM_GC_THRESHOLD = 200_000


# Portwarden's models use no pydantic plugin; without this, the first model a command builds scans
# the metadata of every installed distribution for plugin entry points (about 30 ms with the
# development dependencies installed: bench/startup.py), and with it off pydantic's loader still
# imports importlib.metadata (``portwarden.startup``). Set PYDANTIC_DISABLE_PLUGINS (to "" for all)
# to have them loaded.
PLUGINS_VARIABLE = startup.PLUGINS_VARIABLE


def run() -> None:
    os.environ.setdefault(PLUGINS_VARIABLE, "__all__")
    startup.skip_plugin_loader()
    if sys.argv[1:] == ["--version"]:
        from portwarden import __version__

        sys.stdout.write(f"portwarden {__version__}\n")
        return
    if sys.argv[1:2] == ["sbom"] or sys.argv[2:3] == ["sbom"]:
        # An analysis allocates a few objects per file of the image (hundreds of thousands), nearly
        # all kept until it ends: at the default threshold (700 allocations) the cyclic collector
        # passes over the newest ones hundreds of times for nothing. Each pass costs about 0.2 us per
        # object it finds (at 50,000, the two passes of an analysis of 13,500 files on cached layers
        # were 5% of its CPU); at 200,000 such an analysis makes none, a larger one a pass per 200,000
        # objects. What it may hold back longer is garbage in cycles, which analyses hardly make.
        gc.set_threshold(SBOM_GC_THRESHOLD, *gc.get_threshold()[1:])
        # A plain document request: the document an identical request stored, else the analysis,
        # without building the command line (cli.stored_sbom); any other case, the full command line.
        from portwarden.cli.stored_sbom import answer_plain_sbom

        if answer_plain_sbom(sys.argv[1:]):
            # Answered, written and flushed: the process ends. The collector's last pass at
            # shutdown would walk every object the analysis left (50 ms of CPU, a tenth of an
            # analysis of 13,500 files on cached layers) to free what the exit frees anyway;
            # frozen, they are left to it (atexit handlers and file flushing still run).
            gc.freeze()
            return
    from portwarden.cli.main import run as run_command_line

    run_command_line()
