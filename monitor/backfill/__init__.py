"""`policywatch backfill`: a page's history from before policywatch watched it, from a web archive (the
Wayback Machine's CDX API and raw captures) or from WARC files, through the same extraction and detection as a
nightly pass, stored at each capture's own time and never e-mailed."""
