"""Scrapy settings for policywatch. Values from the TOML config (`[crawl]`) are applied by the spider's
`from_crawler` (see crawler.spiders.base.configure_settings), so `scrapy crawl watchlist -a config=…` and
`policywatch run` behave the same."""

from scrapy.settings import default_settings as _default

BOT_NAME = "policywatch"
SPIDER_MODULES = ["policywatch.crawler.spiders"]
NEWSPIDER_MODULE = "policywatch.crawler.spiders"

ROBOTSTXT_OBEY = True
USER_AGENT = "policywatch/0.1 (+https://github.com/policywatch/policywatch)"
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.5
# The configured delay, exactly: Scrapy's random jitter is drawn again each time a slot wakes, so requests
# end up spaced wider than the delay on average (BENCHMARKS.md); a monitor that names itself in its
# User-Agent needs no jitter, and a host gets the rate the operator chose.
if hasattr(_default, "DOWNLOAD_DELAY_JITTER"):  # Scrapy 2.19 renamed it (and warns about the old name)
    DOWNLOAD_DELAY_JITTER = 0.0
else:
    RANDOMIZE_DOWNLOAD_DELAY = False
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 8 * 1024 * 1024
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
HTTPCACHE_ENABLED = False
REDIRECT_MAX_TIMES = 5
METAREFRESH_ENABLED = False
DEPTH_LIMIT = 0  # discovery depth is enforced by the spider from [discovery].depth

DOWNLOADER_MIDDLEWARES = {
    # Before robots.txt (100) and redirects (600): every request, redirected ones included, is checked.
    "policywatch.crawler.middlewares.AllowedDomainsMiddleware": 50,
    # Scrapy's robots.txt check skips requests queued while robots.txt loads (see the class): ours replaces
    # it.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "policywatch.crawler.middlewares.RobotsTxtMiddleware": 100,
    "policywatch.crawler.middlewares.RetryAfterMiddleware": 560,  # sees 429/503 before RetryMiddleware (550)
}
# Scrapy checks that a generator callback returns no value by reading and parsing its source, and keeps the
# answer only while that request's bound method lives: on a night of thousands of responses it parsed
# `parse` hundreds of times (BENCHMARKS.md). The spider's callbacks are policywatch's own, and return none.
WARN_ON_GENERATOR_RETURN_VALUE = False
# One item per response here; Scrapy would otherwise start CONCURRENT_ITEMS (100) asyncio tasks for each
# response.
CONCURRENT_ITEMS = 2
ITEM_PIPELINES = {
    "policywatch.crawler.pipelines.StorePipeline": 300,
}
# Components policywatch never uses are left out of Scrapy's base lists, not disabled with `None`: Scrapy
# imports the module of every key it is given, even one set to None. Left out: the telnet console, the
# remote-control endpoint (it imports aiohttp), the cookies middleware (cookies are off; it imports tldextract
# and requests).
_UNUSED = {
    "scrapy.extensions.telnet.TelnetConsole",
    "scrapy.extensions.remote_control.RemoteControl",
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
}
EXTENSIONS_BASE = {k: v for k, v in _default.EXTENSIONS_BASE.items() if k not in _UNUSED}
# AutoThrottle, with each host's own delay ([crawl] host_delays) kept as its floor (crawler/throttle.py)
EXTENSIONS_BASE = {
    ("policywatch.crawler.throttle.HostAwareAutoThrottle" if k.endswith(".AutoThrottle") else k): v
    for k, v in EXTENSIONS_BASE.items()
}
DOWNLOADER_MIDDLEWARES_BASE = {
    k: v for k, v in _default.DOWNLOADER_MIDDLEWARES_BASE.items() if k not in _UNUSED
}

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"
# Responses waiting for the page work, in bytes (a body under 1 KB counts as 1 KB). Scrapy allows 5 MB: on a
# 304 night that holds thousands of responses while the page work catches up; 1 MB keeps it just as busy
# (BENCHMARKS.md).
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 1_000_000

# Scrapy logs component versions at start; "Platform" (platform.platform()) forks `uname -p` on Linux, and the
# crawl child must start no process of its own (tests/test_crawl_process.py): the rest is logged as usual.
LOG_VERSIONS = [
    "lxml",
    "libxml2",
    "cssselect",
    "parsel",
    "w3lib",
    "Twisted",
    "Python",
    "pyOpenSSL",
    "cryptography",
]
