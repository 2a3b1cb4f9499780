"""Parsers for upstream vulnerability feeds, one module per format.

Each parser turns the bytes or stream the feed fetcher hands it into normalized records
(``portwarden.core.model.vulnerability``). None of them performs I/O beyond reading that input.
A problem confined to one record is counted in a :class:`~portwarden.core.vulns.feeds.report.FeedParseReport`
and the record is skipped; a document that cannot be read at all raises ``FeedFormatError``.
"""
