"""Vulnerability data and matching: version comparison, feed parsing, the database and the matcher."""
