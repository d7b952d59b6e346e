"""Detection: pure functions, bytes or blocks in, decisions out — extract (GCWeb and generic), normalize,
quality (soft errors), diff, jsondiff, facts, topics, detect (significance, summary). No I/O, and nothing of
the config, the nightly pass or the CLI: the types it needs (a topic) are its own, and the config builds them.
"""
