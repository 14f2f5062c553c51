"""/api/docs/: Swagger UI from this site's static files, under a policy that
allows files from the site only; every other /api/ answer keeps its own."""

import re

from config.middleware import API_POLICY, content_security_policy


def test_the_api_docs_page_loads_only_this_sites_files(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == content_security_policy()
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(url.startswith("/") for url in sources), sources
    assert any("drf_spectacular_sidecar/swagger-ui-dist/" in url for url in sources)
    # Nothing inline for the policy to block: scripts are files, no <style>.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page and "style=" not in page


def test_its_script_is_a_file_that_points_at_the_schema(client, db):
    response = client.get("/api/docs/", {"script": ""})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in response.content.decode()


def test_the_rest_of_the_api_keeps_its_strict_policy(client, db):
    for path in ("/api/schema/", "/api/balance/", "/api/docs/extra/"):
        assert client.get(path)["Content-Security-Policy"] == API_POLICY, path


def test_the_quickstart_links_to_it(client, db):
    page = client.get("/docs/").content.decode()
    assert 'href="/api/docs/"' in page and 'href="/api/schema/"' in page
