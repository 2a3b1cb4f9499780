"""The parts of matching packages against the vulnerability database, one concern per module.

``lookups`` (which namespace and name a package is searched under), ``ranges`` (whether a version is
affected by a stored range, and its fix), ``records`` (what every match of one advisory shares:
severity, CVSS, KEV, EPSS), ``merge`` (statements of one issue become one finding), and
``construct`` (building the frozen result models without re-validating typed values).
``core.vulns.matcher`` assembles them into matches.
"""
