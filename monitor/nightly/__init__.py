"""The nightly pass: the pass itself (lock, run, crawl child, reports, digests), crawl health, delivery of the
site and the digests, and the scheduler daemon."""
