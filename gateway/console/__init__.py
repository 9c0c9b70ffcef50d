"""The web console: server-rendered pages on their own port, a thin client of the public API.

:mod:`sessions` keeps who signed in (server side, behind an HttpOnly cookie) and the CSRF token
of each session; :mod:`presign` mints SigV4 presigned URLs for the S3 door; :mod:`app` is the
raw ASGI application (pages, forms, the few JSON calls the upload script makes); :mod:`server`
runs it under uvicorn in the gateway's event loop. docs/console.md says what it offers.
"""
