"""policywatch spiders (run `scrapy list` from the repository root)."""
