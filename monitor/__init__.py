"""policywatch's monitor, organised by role: `detection` (pure: bytes in, decisions out), `page` and
`pagework` (the one page pipeline and the live pass's use of it), `config` (one schema), `handoff` (what a
pass and its crawl child exchange), `nightly` (the pass, delivery, the scheduler), `backfill`, `cli`, `demo`.

The crawl child imports the page work (pagework, page, detection, config, handoff, fetchresult, urls); it
never imports the pass, the CLI or the demo (ARCHITECTURE.md, checked by tests/test_architecture.py).
"""

__version__ = "0.1.0"
