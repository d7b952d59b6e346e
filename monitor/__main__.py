"""`python -m monitor …` is `policywatch …` (the scheduler starts passes this way, whatever PATH says)."""
from monitor.cli import main

main()
