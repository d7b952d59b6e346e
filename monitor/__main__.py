"""`python -m monitor …` is `policywatch …` (the scheduler starts passes this way, whatever PATH says)."""

from policywatch.monitor.cli import main

main()
