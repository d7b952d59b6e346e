"""Items the spiders yield: one FetchResult per URL per pass. The type lives in `monitor.fetchresult`, beside
the `PageOutcome` the page work returns, because the monitor consumes it and never imports the crawler."""

from policywatch.monitor.fetchresult import FetchResult

__all__ = ["FetchResult"]
