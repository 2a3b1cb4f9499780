"""The dashboard's WSGI application: routing, sign-in, sessions, CSRF, security headers, templates.

Pages live under ``/ui``; ``portwarden serve`` mounts this app beside the API on the same port
(``portwarden.web.mount``). Every value reaches HTML through Jinja2 with autoescaping on, and every
response carries a Content-Security-Policy that allows scripts and styles from this origin's static
files only (no inline script, no CDN).
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from portwarden.web.client import ApiClient, ApiError, BasicCredentials, Transport
from portwarden.web.sessions import Session, SessionStore

logger = logging.getLogger("portwarden.web")

PREFIX = "/ui"
SESSION_COOKIE = "portwarden_session"
LOGIN_CSRF_COOKIE = "portwarden_login"
MAX_FORM_BYTES = 4 * 1024 * 1024
STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

StartResponse = Callable[..., Any]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    headers: dict[str, str]
    client: str
    secure: bool
    session: Session | None = None

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    @property
    def is_htmx(self) -> bool:
        return self.headers.get("hx-request") == "true"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/html; charset=utf-8"


def redirect(location: str, status: int = 303) -> Reply:
    return Reply(status=status, headers=[("Location", location)])


class SignIn(Protocol):
    """Checks what the sign-in form was given; the session to open, or None."""

    def __call__(
        self, transport: Transport, username: str, password: str, client: str
    ) -> tuple[str, str, bool, BasicCredentials | None] | None: ...


def api_account_sign_in(
    transport: Transport, username: str, password: str, client: str
) -> tuple[str, str, bool, BasicCredentials | None] | None:
    """The API's own accounts: the credentials must pass the API (its throttle applies)."""
    credentials = BasicCredentials(username, password)
    answer = ApiClient(transport, credentials, client).call("GET", "/account")
    if answer.status != 200:
        return None
    account = answer.json()
    return username, str(account["name"]), account.get("type") == "admin", credentials


class OperatorSignIn:
    """Against an API Gateway stack the API calls are signed with the operator's AWS credentials,
    so the browser signs in to the dashboard itself, with a password the operator set."""

    def __init__(self, password: str) -> None:
        self._password = password

    def __call__(
        self, transport: Transport, username: str, password: str, client: str
    ) -> tuple[str, str, bool, BasicCredentials | None] | None:
        if not hmac.compare_digest(password.encode(), self._password.encode()):
            return None
        answer = ApiClient(transport, None, client).call("GET", "/account")
        if answer.status != 200:
            raise ApiError.of(answer)
        account = answer.json()
        return username or "operator", str(account["name"]), account.get("type") == "admin", None


@dataclass
class View:
    """What a page handler gets: the request, the API as the signed-in user, and the renderer."""

    request: Request
    api: ApiClient
    render_template: Callable[..., str]

    @property
    def session(self) -> Session:
        assert self.request.session is not None
        return self.request.session

    def render(self, template: str, http_status: int = 200, **values: Any) -> Reply:
        body = self.render_template(template, request=self.request, session=self.request.session, **values)
        return Reply(status=http_status, body=body.encode("utf-8"))


Handler = Callable[..., Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    # Pages anyone may open (the sign-in form, static files).
    public: bool = False


class Dashboard:
    def __init__(
        self,
        transport: Transport,
        *,
        sign_in: SignIn = api_account_sign_in,
        sessions: SessionStore | None = None,
        secure_cookies: bool | None = None,
        prefix: str = PREFIX,
    ) -> None:
        from portwarden.web import views

        self.transport = transport
        self._sign_in = sign_in
        self.sessions = sessions or SessionStore()
        self._secure = secure_cookies
        self.prefix = prefix
        self.templates = Environment(
            loader=PackageLoader("portwarden.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        views.register_filters(self.templates)
        self.templates.globals.update(prefix=prefix, url=self.url)
        self._static = _static_files()
        self.routes: list[Route] = [
            Route("GET", re.compile(r"/static/(?P<name>[A-Za-z0-9_./-]+)"), self._static_file, public=True),
            Route("GET", re.compile(r"/login"), self._login_form, public=True),
            Route("POST", re.compile(r"/login"), self._login, public=True),
            Route("POST", re.compile(r"/logout"), self._logout),
            *views.routes(),
        ]

    def _render(self, template: str, **values: Any) -> str:
        return self.templates.get_template(template).render(**values)

    def url(self, path: str, **query: Any) -> str:
        pairs = [(key, str(value)) for key, value in query.items() if value not in (None, "")]
        return self.prefix + path + (("?" + urlencode(pairs)) if pairs else "")

    # ---- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = self._request(environ)
        try:
            reply = self._dispatch(request, environ)
        except _BadRequest as exc:
            reply = self._error_page(request, HTTPStatus.BAD_REQUEST, str(exc))
        except Exception:
            logger.exception("dashboard page %s %s failed", request.method, request.path)
            reply = self._error_page(
                request, HTTPStatus.INTERNAL_SERVER_ERROR, "The page failed; see the log."
            )
        headers = [("Content-Type", reply.content_type), *SECURITY_HEADERS, *reply.headers]
        if not any(name.lower() == "cache-control" for name, _ in reply.headers):
            headers.append(("Cache-Control", "no-store"))
        headers.append(("Content-Length", str(len(reply.body))))
        start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers)
        return [reply.body] if request.method != "HEAD" else [b""]

    def _request(self, environ: dict[str, Any]) -> Request:
        path = (environ.get("PATH_INFO") or "/")[len(self.prefix) :] or "/"
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        cookies: dict[str, str] = {}
        try:
            parsed = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            cookies = {key: morsel.value for key, morsel in parsed.items()}
        except CookieError:
            cookies = {}
        secure = self._secure if self._secure is not None else environ.get("wsgi.url_scheme") == "https"
        return Request(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=path,
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            form={},
            cookies=cookies,
            headers=headers,
            client=environ.get("REMOTE_ADDR") or "-",
            secure=secure,
        )

    def _dispatch(self, request: Request, environ: dict[str, Any]) -> Reply:
        method = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.fullmatch(request.path)
            if found is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            if method == "POST":
                request.form = _read_form(environ)
                if not _same_origin(request):
                    return self._error_page(request, HTTPStatus.FORBIDDEN, "Cross-site request refused.")
            if not route.public:
                request.session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
                if request.session is None:
                    return self._to_login(request)
                if method == "POST" and not request.session.csrf_matches(request.form.get("csrf_token")):
                    return self._error_page(
                        request,
                        HTTPStatus.FORBIDDEN,
                        "The form's security token is missing or stale: reload the page and try again.",
                    )
            view = View(request, self._api(request), self._render)
            try:
                return route.handler(view, **found.groupdict())
            except ApiError as exc:
                return self._api_error(request, exc)
        if allowed:
            return Reply(status=405, body=b"Method Not Allowed", headers=[("Allow", ", ".join(allowed))])
        return self._error_page(request, HTTPStatus.NOT_FOUND, "There is no such page.")

    def _api(self, request: Request) -> ApiClient:
        credentials = request.session.credentials if request.session is not None else None
        return ApiClient(self.transport, credentials, request.client)

    def _api_error(self, request: Request, error: ApiError) -> Reply:
        if error.status == 401:
            # The credentials no longer pass (password changed, account disabled): sign out.
            self.sessions.end(request.cookies.get(SESSION_COOKIE))
            return self._to_login(request)
        status = HTTPStatus(error.status) if 400 <= error.status < 600 else HTTPStatus.BAD_GATEWAY
        return self._error_page(request, status, error.message, error.details)

    def _to_login(self, request: Request) -> Reply:
        target = self.url("/login", next=self.prefix + request.path if request.method == "GET" else None)
        if request.is_htmx:
            return Reply(status=200, headers=[("HX-Redirect", target)])
        return redirect(target)

    def _error_page(
        self, request: Request, status: HTTPStatus, message: str, details: tuple[str, ...] = ()
    ) -> Reply:
        body = self.templates.get_template("error.html").render(
            request=request, session=request.session, status=status, message=message, details=details
        )
        return Reply(status=status.value, body=body.encode())

    # ---- sign-in ------------------------------------------------------------------------------------

    def _cookie(self, request: Request, name: str, value: str, max_age: int | None = None) -> str:
        parts = [f"{name}={value}", f"Path={self.prefix}", "HttpOnly", "SameSite=Strict"]
        if request.secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts)

    def _login_form(self, view: View, error: str | None = None, status: int = 200) -> Reply:
        request = view.request
        # Login CSRF: the form's token must match a cookie only this origin could have set.
        token = secrets.token_urlsafe(32)
        reply = view.render(
            "login.html",
            http_status=status,
            login_token=token,
            error=error,
            next=_safe_next(request, self.prefix),
        )
        reply.headers.append(("Set-Cookie", self._cookie(request, LOGIN_CSRF_COOKIE, token, 3600)))
        return reply

    def _login(self, view: View) -> Reply:
        request = view.request
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        given = request.form.get("csrf_token", "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            return self._login_form(view, "The sign-in form expired: try again.", status=403)
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username or not password:
            return self._login_form(view, "Enter a username and a password.", status=400)
        found = self._sign_in(self.transport, username, password, request.client)
        if found is None:
            return self._login_form(view, "Wrong username or password.", status=401)
        user, account, is_admin, credentials = found
        # A fresh session id at every sign-in (no fixation).
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        session = self.sessions.create(user, account, is_admin, credentials)
        reply = redirect(_safe_next(request, self.prefix) or self.url("/"))
        reply.headers.append(("Set-Cookie", self._cookie(request, SESSION_COOKIE, session.session_id)))
        reply.headers.append(("Set-Cookie", self._cookie(request, LOGIN_CSRF_COOKIE, "", 0)))
        logger.info("dashboard sign-in of %s from %s", user, request.client)
        return reply

    def _logout(self, view: View) -> Reply:
        self.sessions.end(view.request.cookies.get(SESSION_COOKIE))
        reply = redirect(self.url("/login"))
        reply.headers.append(("Set-Cookie", self._cookie(view.request, SESSION_COOKIE, "", 0)))
        return reply

    # ---- static files ------------------------------------------------------------------------------

    def _static_file(self, view: View, name: str) -> Reply:
        found = self._static.get(name)
        if found is None:
            return self._error_page(view.request, HTTPStatus.NOT_FOUND, "There is no such file.")
        data, content_type = found
        return Reply(
            body=data, content_type=content_type, headers=[("Cache-Control", "public, max-age=3600")]
        )


class _BadRequest(Exception):
    pass


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every static file, read once: a name outside this set is a 404, whatever its dots and slashes."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file() and path.suffix in {".js", ".css", ".svg", ".txt", ".md", ".ico"}:
            name = path.relative_to(STATIC_DIR).as_posix()
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in {"application/javascript", "image/svg+xml"}:
                kind += "; charset=utf-8"
            files[name] = (path.read_bytes(), kind)
    return files


def _read_form(environ: dict[str, Any]) -> dict[str, str]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise _BadRequest("Content-Length is not a number") from exc
    if length < 0 or length > MAX_FORM_BYTES:
        raise _BadRequest("the form is too large")
    raw = environ["wsgi.input"].read(length) if length else b""
    kind = environ.get("CONTENT_TYPE", "")
    if raw and not kind.startswith("application/x-www-form-urlencoded"):
        raise _BadRequest("forms are sent as application/x-www-form-urlencoded")
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise _BadRequest("the form is not UTF-8") from exc


def _same_origin(request: Request) -> bool:
    """Browsers say where a POST comes from; a cross-site one is refused even before the CSRF token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if origin and origin != "null" and host:
        return origin.split("://", 1)[-1] == host
    return True


def _safe_next(request: Request, prefix: str) -> str | None:
    """Where to go after signing in: only a path of this dashboard (never another site)."""
    target = request.form.get("next") or request.query.get("next") or ""
    if re.fullmatch(re.escape(prefix) + r"(/[A-Za-z0-9_./%:@?=&+-]*)?", target) and "//" not in target:
        return target
    return None


def query_with(query: Mapping[str, str], **changes: Any) -> dict[str, str]:
    merged = dict(query)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged
