"""The dashboard's pages. Each one is a few API calls and a template; nothing here reads a store."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment

from portwarden.web.app import Reply, Route, View, query_with, redirect
from portwarden.web.client import ApiError

DIGEST = r"(?P<digest>sha256:[a-f0-9]{64})"
SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")
SEVERITY_RANK = {name: len(SEVERITIES) - index for index, name in enumerate(SEVERITIES)}
ANALYSIS_STATUSES = ("not_analyzed", "analyzing", "analyzed", "analysis_failed")
PENDING = frozenset({"not_analyzed", "analyzing"})
PAGE_SIZES = (25, 50, 100, 200)
# Sorting and filtering cover every vulnerability; a page shows this many (all with per_page).
VULN_PAGE_SIZE = 250
PACKAGE_CONTENT_TYPES = ("os", "npm", "gem", "python", "java", "go", "binary", "nuget", "rust")
IMAGE_SORTS = {
    "created": "Added (newest first)",
    "tag": "Tag",
    "status": "Analysis status",
    "severity": "Most severe vulnerabilities",
    "packages": "Package count",
    "policy": "Policy status (failing first)",
}
VULN_SORTS = {
    "severity": "Severity",
    "cvss": "CVSS",
    "epss": "EPSS",
    "package": "Package",
    "vuln": "Identifier",
}
DOWNLOADS = {
    "sbom-native": ("/sboms/native", "application/gzip", "sbom.native.json.gz"),
    "sbom-cyclonedx": ("/sboms/cyclonedx-json", "application/json", "sbom.cyclonedx.json"),
    "sbom-spdx": ("/sboms/spdx-json", "application/json", "sbom.spdx.json"),
    "vulnerabilities": ("/vuln/all", "application/json", "vulnerabilities.json"),
    "sarif": ("/sarif", "application/sarif+json", "vulnerabilities.sarif.json"),
}
TABS = ("summary", "vulnerabilities", "packages", "policy", "secrets", "downloads")
# Without a delivery log: the events of notifications sent and of failed deliveries.
DELIVERY_EVENT_TYPES = "*.notifications.*"


def routes() -> list[Route]:
    def get(pattern: str, handler: Any) -> Route:
        return Route("GET", re.compile(pattern), handler)

    def post(pattern: str, handler: Any) -> Route:
        return Route("POST", re.compile(pattern), handler)

    return [
        get(r"/", summary_page),
        get(r"/images", images_page),
        post(r"/images", add_image),
        get(rf"/images/{DIGEST}", image_page),
        get(rf"/images/{DIGEST}/row", image_row),
        get(rf"/images/{DIGEST}/status", image_status),
        get(rf"/images/{DIGEST}/download/(?P<kind>[a-z-]+)", download),
        get(r"/policies", policies_page),
        post(r"/policies", add_policy),
        post(r"/policies/(?P<policy_id>[^/]+)/activate", activate_policy),
        get(r"/feeds", feeds_page),
        post(r"/feeds/sync", sync_feeds),
        get(r"/events", events_page),
        get(r"/deliveries", deliveries_page),
        get(r"/subscriptions", subscriptions_page),
        post(r"/subscriptions/(?P<subscription_id>[^/]+)/toggle", toggle_subscription),
        get(r"/tags", tag_page),
    ]


# ---- formatting --------------------------------------------------------------------------------------


def register_filters(environment: Environment) -> None:
    environment.filters.update(
        short_digest=short_digest,
        when=when,
        size=human_size,
        severity_class=lambda value: "sev-" + str(value or "unknown").lower(),
        safe_link=safe_link,
        without_credentials=without_credentials,
    )
    environment.globals.update(
        SEVERITIES=SEVERITIES, ANALYSIS_STATUSES=ANALYSIS_STATUSES, PENDING=PENDING, TABS=TABS
    )


def short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if hexpart else digest[:19]


def when(value: str | None) -> str:
    """``2026-03-01T12:00:00Z`` → ``2026-03-01 12:00 UTC``."""
    if not value:
        return "—"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def human_size(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if number < 1024 or unit == "GiB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return str(value)


def without_credentials(target: Any) -> str:
    """A delivery target as shown: a URL's user and password (basic auth in a webhook URL) removed."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", str(target or ""), flags=re.IGNORECASE)


def safe_link(url: Any) -> str | None:
    """Only http(s) links are ever made clickable (a feed's ``javascript:`` URL stays text)."""
    text = str(url or "")
    return text if re.match(r"^https?://", text) else None


# ---- helpers ------------------------------------------------------------------------------------------


def _int(text: str, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(text)))
    except ValueError:
        return default


def _paged(items: Sequence[Any], page: int, per_page: int) -> tuple[Sequence[Any], int, int]:
    pages = max(1, math.ceil(len(items) / per_page))
    page = min(page, pages)
    return items[(page - 1) * per_page : page * per_page], page, pages


def _flash(view: View) -> str | None:
    return view.request.arg("done") or None


def _url(path: str, **query: Any) -> str:
    from portwarden.web.app import PREFIX

    pairs = [(key, str(value)) for key, value in query.items() if value not in (None, "")]
    return PREFIX + path + ("?" + urlencode(pairs) if pairs else "")


def _worst(row: Mapping[str, Any]) -> tuple[int, ...]:
    counts = row.get("vulnerabilities") or {}
    return tuple(int(counts.get(name, 0)) for name in SEVERITIES)


def _at_least(row: Mapping[str, Any], severity: str) -> bool:
    counts = row.get("vulnerabilities") or {}
    threshold = SEVERITY_RANK[severity]
    return any(int(counts.get(name, 0)) > 0 for name in SEVERITIES if SEVERITY_RANK[name] >= threshold)


POLICY_ORDER = {"stop": 0, "fail": 0, "warn": 1, "go": 2, "pass": 2}


def _policy_key(row: Mapping[str, Any]) -> int:
    policy = row.get("policy")
    return POLICY_ORDER.get(str(policy.get("final_action", "")).lower(), 3) if policy else 4


def _policy_state(row: Mapping[str, Any]) -> str:
    policy = row.get("policy")
    if not policy:
        return "none"
    return "fail" if policy.get("status") == "fail" else "pass"


# ---- summary ------------------------------------------------------------------------------------------


def summary_page(view: View) -> Reply:
    rows: list[dict[str, Any]] = view.api.get("/summaries/images")
    by_policy = {"pass": 0, "fail": 0, "none": 0}
    by_status = dict.fromkeys(ANALYSIS_STATUSES, 0)
    totals = dict.fromkeys(SEVERITIES, 0)
    for row in rows:
        by_policy[_policy_state(row)] += 1
        by_status[row["analysis_status"]] = by_status.get(row["analysis_status"], 0) + 1
        for name, count in (row.get("vulnerabilities") or {}).items():
            totals[name] = totals.get(name, 0) + int(count)
    top = view.api.get("/summaries/vulnerabilities", limit=15)
    kev = view.api.get("/summaries/vulnerabilities", limit=50, kev_only=True)
    return view.render(
        "summary.html",
        image_count=len(rows),
        by_policy=by_policy,
        by_status=by_status,
        totals=totals,
        top=top,
        kev=kev,
    )


# ---- images -------------------------------------------------------------------------------------------


def images_page(view: View) -> Reply:
    request = view.request
    rows: list[dict[str, Any]] = view.api.get("/summaries/images")
    total = len(rows)
    search = request.arg("q").strip().lower()
    status = request.arg("status")
    severity = request.arg("severity")
    policy = request.arg("policy")
    sort = request.arg("sort", "created")
    if sort not in IMAGE_SORTS:
        sort = "created"
    if search:
        rows = [
            row
            for row in rows
            if search in row["imageDigest"].lower() or any(search in tag.lower() for tag in row["fulltags"])
        ]
    if status in ANALYSIS_STATUSES:
        rows = [row for row in rows if row["analysis_status"] == status]
    if severity in SEVERITY_RANK:
        rows = [row for row in rows if _at_least(row, severity)]
    if policy in ("pass", "fail", "none"):
        rows = [row for row in rows if _policy_state(row) == policy]
    keys: dict[str, Any] = {
        "created": lambda row: row.get("created_at") or "",
        "tag": lambda row: (row["fulltags"] or [""])[0],
        "status": lambda row: (
            ANALYSIS_STATUSES.index(row["analysis_status"])
            if row["analysis_status"] in ANALYSIS_STATUSES
            else 9
        ),
        "severity": _worst,
        "packages": lambda row: row.get("package_count") or 0,
        "policy": _policy_key,
    }
    rows.sort(key=keys[sort], reverse=sort in ("created", "severity", "packages"))
    per_page = _int(request.arg("per_page", "50"), 50, 1, 500)
    shown, page, pages = _paged(rows, _int(request.arg("page", "1"), 1, 1, 1_000_000), per_page)
    return view.render(
        "images.html",
        rows=shown,
        matched=len(rows),
        total=total,
        page=page,
        pages=pages,
        per_page=per_page,
        sort=sort,
        sorts=IMAGE_SORTS,
        page_sizes=PAGE_SIZES,
        filters={"q": request.arg("q"), "status": status, "severity": severity, "policy": policy},
        page_url=lambda number: _url("/images", **query_with(request.query, page=number)),
        added=request.arg("added"),
        error=None,
    )


def image_row(view: View, digest: str) -> Reply:
    """One row of the list, for htmx to swap in while the image is being analyzed."""
    rows: list[dict[str, Any]] = view.api.get("/summaries/images")
    for row in rows:
        if row["imageDigest"] == digest:
            return view.render("_image_row.html", row=row)
    return Reply(status=404, body=b"")


def image_status(view: View, digest: str) -> Reply:
    """The detail page's status while analyzing; once done, htmx reloads the page to show the rest."""
    status = view.api.get(f"/images/{digest}")[0]["analysis_status"]
    reply = view.render("_status.html", status=status)
    if status not in PENDING:
        reply.headers.append(("HX-Refresh", "true"))
    return reply


def add_image(view: View) -> Reply:
    tag = view.request.form.get("tag", "").strip()
    if not tag:
        return _images_error(view, "Enter the image's tag, such as registry.example.com/team/app:1.2.")
    try:
        added = view.api.post("/images", {"tag": tag})
    except ApiError as exc:
        if exc.status == 401:
            raise
        return _images_error(view, exc.message)
    digest = added[0]["imageDigest"] if isinstance(added, list) and added else ""
    return redirect(_url("/images", added=digest))


def _images_error(view: View, message: str) -> Reply:
    rendered = view.render_template("images.html", **_images_context_for_error(view), error=message)
    return Reply(status=400, body=rendered.encode())


def _images_context_for_error(view: View) -> dict[str, Any]:
    rows: list[dict[str, Any]] = view.api.get("/summaries/images")
    rows.sort(key=lambda row: row.get("created_at") or "", reverse=True)
    shown, page, pages = _paged(rows, 1, 50)
    return {
        "request": view.request,
        "session": view.request.session,
        "rows": shown,
        "matched": len(rows),
        "total": len(rows),
        "page": page,
        "pages": pages,
        "per_page": 50,
        "sort": "created",
        "sorts": IMAGE_SORTS,
        "page_sizes": PAGE_SIZES,
        "filters": {"q": "", "status": "", "severity": "", "policy": ""},
        "page_url": lambda number: _url("/images", page=number),
        "added": "",
        "tag_value": view.request.form.get("tag", ""),
    }


# ---- image detail -------------------------------------------------------------------------------------


def image_page(view: View, digest: str) -> Reply:
    request = view.request
    tab = request.arg("tab", "summary")
    if tab not in TABS:
        tab = "summary"
    image = view.api.get(f"/images/{digest}")[0]
    tags = [detail["fulltag"] for detail in image.get("image_detail", [])]
    analyzed = image["analysis_status"] == "analyzed"
    values: dict[str, Any] = {
        "image": image,
        "digest": digest,
        "tags": tags,
        "tab": tab,
        "analyzed": analyzed,
    }
    if analyzed:
        loaders: dict[str, Callable[[View, str, list[str]], dict[str, Any]]] = {
            "summary": _summary_tab,
            "vulnerabilities": _vulnerabilities_tab,
            "packages": _packages_tab,
            "policy": _policy_tab,
            "secrets": _secrets_tab,
            "downloads": _downloads_tab,
        }
        values.update(loaders[tab](view, digest, tags))
    return view.render("image.html", **values)


def _downloads_tab(_view: View, _digest: str, _tags: list[str]) -> dict[str, Any]:
    return {"downloads": DOWNLOADS}


def _decoded(document: Mapping[str, Any], key: str) -> str:
    try:
        return base64.b64decode(str(document.get(key) or "")).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def _summary_tab(view: View, digest: str, _tags: list[str]) -> dict[str, Any]:
    manifest_text = _decoded(view.api.get(f"/images/{digest}/metadata/manifest"), "metadata")
    history_text = _decoded(view.api.get(f"/images/{digest}/metadata/docker_history"), "metadata")
    dockerfile = _decoded(view.api.get(f"/images/{digest}/metadata/dockerfile"), "metadata")
    try:
        manifest = json.loads(manifest_text) if manifest_text else {}
    except ValueError:
        manifest = {}
    try:
        history = json.loads(history_text) if history_text else []
    except ValueError:
        history = []
    layers = [
        {"digest": layer.get("digest"), "size": layer.get("size"), "media_type": layer.get("mediaType")}
        for layer in (manifest.get("layers") or [])
        if isinstance(layer, dict)
    ]
    counts = next(
        (row for row in view.api.get("/summaries/images") if row["imageDigest"] == digest),
        None,
    )
    return {
        "layers": layers,
        "history": [entry for entry in history if isinstance(entry, dict)],
        "dockerfile": dockerfile,
        "counts": counts,
    }


def _cvss(row: Mapping[str, Any]) -> float:
    best = -1.0
    for source in ("nvd_data", "vendor_data"):
        for data in row.get(source) or []:
            for version in ("cvss_v3", "cvss_v2"):
                score = (data.get(version) or {}).get("base_score", -1)
                if isinstance(score, int | float) and score > best:
                    best = float(score)
    return best


def _vulnerabilities_tab(view: View, digest: str, _tags: list[str]) -> dict[str, Any]:
    request = view.request
    try:
        report = view.api.get(f"/images/{digest}/vuln/all", vendor_only=False)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return {"vulnerabilities": None, "vulnerability_error": exc.message}
    rows = report.get("vulnerabilities") or []
    for row in rows:
        row["cvss"] = _cvss(row)
    show_suppressed = request.arg("suppressed") == "1"
    suppressed = [row for row in rows if row.get("will_not_fix")]
    visible = rows if show_suppressed else [row for row in rows if not row.get("will_not_fix")]
    sort = request.arg("sort", "severity")
    if sort not in VULN_SORTS:
        sort = "severity"
    descending = request.arg("order", "desc") != "asc"
    kev_first = request.arg("kev_first", "1") == "1"
    keys: dict[str, Any] = {
        "severity": lambda row: (SEVERITY_RANK.get(str(row["severity"]).lower(), 0), row["cvss"]),
        "cvss": lambda row: row["cvss"],
        "epss": lambda row: row.get("epss") if row.get("epss") is not None else -1.0,
        "package": lambda row: (row["package_name"], row["package_version"]),
        "vuln": lambda row: row["vuln"],
    }
    visible = sorted(visible, key=keys[sort], reverse=descending)
    if kev_first:
        visible.sort(key=lambda row: not row.get("kev"))
    per_page = _int(request.arg("per_page", str(VULN_PAGE_SIZE)), VULN_PAGE_SIZE, 1, 100_000)
    shown, page, pages = _paged(visible, _int(request.arg("page", "1"), 1, 1, 1_000_000), per_page)
    return {
        "vulnerabilities": shown,
        "vulnerability_count": len(visible),
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "page_url": lambda number: _url(
            f"/images/{digest}", **query_with(request.query, tab="vulnerabilities", page=number)
        ),
        "suppressed_count": len(suppressed),
        "show_suppressed": show_suppressed,
        "vuln_sort": sort,
        "vuln_sorts": VULN_SORTS,
        "descending": descending,
        "kev_first": kev_first,
        "sort_url": lambda key: _url(
            f"/images/{digest}",
            **query_with(
                request.query,
                tab="vulnerabilities",
                sort=key,
                order="asc" if key == sort and descending else "desc",
            ),
        ),
    }


def _packages_tab(view: View, digest: str, _tags: list[str]) -> dict[str, Any]:
    request = view.request
    wanted_type = request.arg("type")
    name = request.arg("name").strip().lower()
    packages: list[dict[str, Any]] = []
    present: list[str] = []
    for content_type in PACKAGE_CONTENT_TYPES:
        rows = view.api.get(f"/images/{digest}/content/{content_type}").get("content") or []
        if rows:
            present.append(content_type)
        if wanted_type and wanted_type != content_type:
            continue
        for row in rows:
            if name and name not in str(row.get("package", "")).lower():
                continue
            packages.append({**row, "content_type": content_type})
    packages.sort(key=lambda row: (str(row.get("package", "")).lower(), str(row.get("version", ""))))
    return {"packages": packages, "package_types": present, "package_type": wanted_type, "name": name}


def _policy_tab(view: View, digest: str, tags: list[str]) -> dict[str, Any]:
    if not tags:
        return {"check": None, "check_error": "This image has no tag to evaluate it as."}
    tag = view.request.arg("tag") or tags[0]
    if tag not in tags:
        tag = tags[0]
    answer = view.api.get(f"/images/{digest}/check", tag=tag, detail=True)
    entry = next(iter(next(iter(answer[0].values())).values()))[0]
    detail = entry.get("detail") or {}
    result = detail.get("result") or {}
    table: dict[str, Any] = {}
    for value in (result.get("result") or {}).values():
        if isinstance(value, dict) and "result" in value:
            table = value["result"]
            break
    header = list(table.get("header") or [])
    rows = [dict(zip(header, row, strict=False)) for row in table.get("rows") or []]
    rank = {"stop": 0, "warn": 1, "go": 2}
    rows.sort(key=lambda row: rank.get(str(row.get("Gate_Action", "")).lower(), 3))
    return {
        "check": entry,
        "check_rows": rows,
        "check_tag": tag,
        "final_action": str(entry.get("final_action") or result.get("final_action") or "").lower(),
        "final_action_reason": entry.get("final_action_reason"),
        "bundle_name": (result.get("bundle") or {}).get("name") or entry.get("policyId"),
    }


def _secrets_tab(view: View, digest: str, _tags: list[str]) -> dict[str, Any]:
    # The API answers where a secret is and which rule found it; the value is never sent.
    found = view.api.get(f"/images/{digest}/artifacts/secret_search")
    return {
        "secrets": [
            {"path": item.get("path"), "rule": match.get("name"), "lines": match.get("lines") or []}
            for item in found
            for match in item.get("matches") or []
        ]
    }


def download(view: View, digest: str, kind: str) -> Reply:
    if kind not in DOWNLOADS:
        return Reply(status=404, body=b"no such download")
    suffix, content_type, filename = DOWNLOADS[kind]
    query = {"vendor_only": False} if kind == "vulnerabilities" else None
    answer = view.api.call("GET", f"/images/{digest}{suffix}", query)
    if answer.status >= 400:
        raise ApiError.of(answer)
    name = f"{digest.split(':', 1)[1][:12]}-{filename}"
    return Reply(
        body=answer.body,
        content_type=content_type,
        headers=[("Content-Disposition", f'attachment; filename="{name}"')],
    )


# ---- policies -----------------------------------------------------------------------------------------


def _rule_of(problem: str) -> str:
    found = re.search(r"rule '?([^'\s:,;]+)", problem)
    return f"rule {found.group(1)}" if found else "bundle"


def policies_page(
    view: View, *, status: int = 200, error: str | None = None, details: Iterable[str] = (), text: str = ""
) -> Reply:
    bundles = view.api.get("/policies", detail=True)
    for bundle in bundles:
        document = bundle.get("policybundle") or {}
        bundle["rule_count"] = sum(
            len(policy.get("rules") or []) for policy in document.get("policies") or []
        )
        bundle["policy_count"] = len(document.get("policies") or [])
    grouped: dict[str, list[str]] = {}
    for problem in details:
        grouped.setdefault(_rule_of(problem), []).append(problem)
    return view.render(
        "policies.html",
        http_status=status,
        bundles=bundles,
        error=error,
        problems=grouped,
        bundle_text=text,
        done=_flash(view),
    )


def add_policy(view: View) -> Reply:
    text = view.request.form.get("bundle", "")
    try:
        document = json.loads(text)
    except ValueError as exc:
        return policies_page(view, status=400, error=f"The bundle is not JSON: {exc}", text=text)
    try:
        added = view.api.post("/policies", document)
    except ApiError as exc:
        if exc.status == 401:
            raise
        # The message repeats every problem; they are listed by rule below it.
        message = exc.message.split("; ", 1)[0] if exc.details else exc.message
        return policies_page(view, status=400, error=message, details=exc.details, text=text)
    return redirect(_url("/policies", done=f"Added bundle {added.get('policyId', '')}"))


def activate_policy(view: View, policy_id: str) -> Reply:
    view.api.put(f"/policies/{policy_id}", {"policyId": policy_id, "active": True})
    return redirect(_url("/policies", done=f"Activated bundle {policy_id}"))


# ---- feeds --------------------------------------------------------------------------------------------


def feeds_page(view: View, *, sync_result: Any = None, status: int = 200) -> Reply:
    feeds = view.api.get("/system/feeds")
    failures = view.api.get("/events", event_type="system.feeds.sync.failed", limit=1).get("results") or []
    return view.render(
        "feeds.html",
        http_status=status,
        feeds=feeds,
        last_failure=failures[0] if failures else None,
        sync_result=sync_result,
    )


def sync_feeds(view: View) -> Reply:
    try:
        result = view.api.post("/system/feeds")
    except ApiError as exc:
        if exc.status == 401:
            raise
        return feeds_page(view, sync_result={"error": exc.message}, status=exc.status)
    return feeds_page(view, sync_result={"feeds": result})


# ---- events and deliveries ----------------------------------------------------------------------------

LEVELS = ("INFO", "WARN", "ERROR")


def _events(view: View, event_type: str | None, template: str) -> Reply:
    request = view.request
    level = request.arg("level")
    page = _int(request.arg("page", "1"), 1, 1, 100_000)
    found = view.api.get(
        "/events",
        level=level if level in LEVELS else None,
        event_type=event_type,
        resource_id=request.arg("resource_id") or None,
        page=page,
        limit=50,
    )
    types = view.api.get("/event_types")
    return view.render(
        template,
        events=found.get("results") or [],
        next_page=bool(found.get("next_page")),
        page=page,
        levels=LEVELS,
        level=level,
        event_type=request.arg("type"),
        event_types=types,
        page_url=lambda number: _url(request.path, **query_with(request.query, page=number)),
    )


def events_page(view: View) -> Reply:
    return _events(view, view.request.arg("type") or None, "events.html")


def deliveries_page(view: View) -> Reply:
    """The delivery log (``/system/notifications/deliveries``) where the server keeps one; else the
    notification events of the event log (sent notifications and failed deliveries)."""
    outcome = view.request.arg("outcome")
    try:
        attempts = view.api.get("/system/notifications/deliveries", limit=500)
    except ApiError as exc:
        # 404: a server without the route; 500: a host without notification delivery.
        if exc.status not in (404, 500, 501):
            raise
        attempts = None
    if attempts is None:
        return _events(view, DELIVERY_EVENT_TYPES, "deliveries.html")
    outcomes = sorted({str(attempt.get("outcome", "")) for attempt in attempts})
    if outcome:
        attempts = [attempt for attempt in attempts if attempt.get("outcome") == outcome]
    return view.render("deliveries.html", attempts=attempts, outcomes=outcomes, outcome=outcome)


# ---- subscriptions and watched tags -------------------------------------------------------------------


def subscriptions_page(view: View) -> Reply:
    subscriptions = view.api.get("/subscriptions")
    kind = view.request.arg("type")
    if kind:
        subscriptions = [s for s in subscriptions if s.get("subscription_type") == kind]
    subscriptions.sort(key=lambda s: (s.get("subscription_key", ""), s.get("subscription_type", "")))
    kinds = sorted({s.get("subscription_type", "") for s in view.api.get("/subscriptions")})
    return view.render(
        "subscriptions.html", subscriptions=subscriptions, kinds=kinds, kind=kind, done=_flash(view)
    )


def toggle_subscription(view: View, subscription_id: str) -> Reply:
    current = view.api.get(f"/subscriptions/{subscription_id}")
    record = current[0] if isinstance(current, list) else current
    active = not bool(record.get("active"))
    view.api.put(f"/subscriptions/{subscription_id}", {"active": active})
    state = "on" if active else "off"
    return redirect(
        _url(
            "/subscriptions",
            done=f"{record.get('subscription_type')} for {record.get('subscription_key')} turned {state}",
        )
    )


def tag_page(view: View) -> Reply:
    tag = view.request.arg("tag").strip()
    if not tag:
        return redirect(_url("/subscriptions"))
    images = view.api.get("/images", fulltag=tag, history=True)
    counts = {row["imageDigest"]: row for row in view.api.get("/summaries/images")}
    history = []
    for image in images:
        row = counts.get(image["imageDigest"], {})
        history.append(
            {
                "digest": image["imageDigest"],
                "status": image["analysis_status"],
                "seen": image.get("created_at"),
                "analyzed": image.get("analyzed_at"),
                "vulnerabilities": row.get("vulnerabilities"),
                "fixable": row.get("fixable"),
                "policy": row.get("policy"),
            }
        )
    history.sort(key=lambda entry: entry["seen"] or "")
    chart = {
        "labels": [when(entry["seen"]) for entry in history],
        "series": {
            name: [(entry["vulnerabilities"] or {}).get(name, 0) for entry in history]
            for name in SEVERITIES[:4]
        },
    }
    subscriptions = view.api.get("/subscriptions", subscription_key=tag)
    return view.render(
        "tag.html", tag=tag, history=list(reversed(history)), chart=chart, subscriptions=subscriptions
    )
