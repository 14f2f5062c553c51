"""
/api/docs/: Swagger UI for people, served from this site's own static files
(drf-spectacular-sidecar, no CDN) under a Content-Security-Policy of files
only, and linked from the quickstart.
"""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_swagger_ui_lists_the_operations_with_no_csp_violation(
    page, live_server_url, csp_violations
):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    response = page.goto("/api/docs/")

    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Switchboard management API"
    )
    # One block per operation of the schema, each naming its method and path.
    schema = page.request.get("/api/schema/?format=json").json()
    expected = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
    }
    expect(page.locator(".opblock").first).to_be_visible()
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in page.locator(".opblock").all()
    }
    assert ("GET", "/api/balance/") in shown
    assert shown == expected
    assert csp_violations == []
    assert errors == []
    # Everything the page loaded came from the site itself.
    assert requested and all(url.startswith(live_server_url) for url in requested)


def test_the_quickstart_links_to_the_api_docs(page, live_server_url):
    page.goto("/docs/")
    page.get_by_role("link", name="management API reference").click()
    expect(page).to_have_url(f"{live_server_url}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
