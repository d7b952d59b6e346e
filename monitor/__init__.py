"""policywatch's monitor: extraction, comparison, detection, the pass and the CLI.

The per-page modules (extract, normalize, facts, diff, jsondiff, topics, detect, quality, urls, config) are
imported by the crawler's item pipeline; the pass, the CLI and the demo are not (see ARCHITECTURE.md).
"""

__version__ = "0.1.0"
