"""The web dashboard: server-rendered pages over the REST API, served beside it by ``portwarden serve``.

Every page is built from API calls made with the signed-in user's credentials (in-process through
the same WSGI app, or over HTTP to a remote Portwarden), never from the stores directly, so the
dashboard shows exactly what the API lets that user see.
"""
