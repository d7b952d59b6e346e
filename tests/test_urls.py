"""URL normalization and the allowed-domains fence (ports included: Scrapy's own filter ignores them)."""

import pytest

from policywatch.monitor.urls import AllowedDomains, normalize_url


@pytest.mark.parametrize(
    "url, key",
    [
        ("HTTPS://WWW.Canada.CA:443/en/Page.html#top", "https://www.canada.ca/en/Page.html"),
        ("http://www.canada.ca:80", "http://www.canada.ca/"),
        ("http://127.0.0.1:8080/a?b=1&a=2", "http://127.0.0.1:8080/a?b=1&a=2"),
    ],
)
def test_normalize(url, key):
    assert normalize_url(url) == key


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://www.canada.ca/en/x.html", True),
        ("http://www.canada.ca/en/x.html", True),
        ("https://sub.www.canada.ca/x", True),
        ("https://www.canada.ca:8443/x", False),  # a port not named is not allowed
        ("https://evilwww.canada.ca/x", False),
        ("https://canada.ca/x", False),
        ("ftp://www.canada.ca/x", False),
        ("javascript:alert(1)", False),
        ("http://127.0.0.1:8080/a", True),
        ("http://127.0.0.1:8081/a", False),
        ("http://127.0.0.1/a", False),
        ("http://[::1]:8080/a", False),
    ],
)
def test_allowed(url, ok):
    assert AllowedDomains(["www.canada.ca", "127.0.0.1:8080"]).allows(url) is ok
