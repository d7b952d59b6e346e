"""One page pipeline, in three named steps shared by the live pass (monitor.pagework) and the backfill
(monitor.backfill.work): `content` reads a response into one `Content` (HTML or JSON, the kind chosen from one
table), `compare` decides what changed against the version before, `store` writes the rows. Each caller brings
its own input (a live fetch, an archive capture) and its own rules of time (the newest version, the version
captured just before)."""
