"""Lambda wiring: settings parsed from the environment, observability, cached service construction.

Only Lambda handlers (``functions/*/app.py``) import from here; the core never does.
"""
