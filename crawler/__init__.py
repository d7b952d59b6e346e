"""policywatch's Scrapy project: spiders fetch, the item pipeline runs the per-page work
(monitor.pagework)."""
