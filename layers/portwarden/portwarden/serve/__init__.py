"""``portwarden serve``: the API on the local store, a WSGI server and the analysis workers."""
