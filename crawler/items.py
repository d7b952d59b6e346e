"""Items the spiders yield: one FetchResult per URL per pass (defined with the per-page work that consumes
it)."""

from policywatch.monitor.fetchresult import FetchResult

__all__ = ["FetchResult"]
