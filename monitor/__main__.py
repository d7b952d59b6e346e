"""`python -m policywatch.monitor …` is `policywatch …`: the scheduler daemon starts each pass this way
(`python -P -m policywatch.monitor run`, nightly.child), so a pass runs with this interpreter whatever PATH
says."""

from policywatch.monitor.cli import main

main()
