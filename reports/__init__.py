"""Reports: Jinja2-rendered Markdown and HTML from the history database (reads storage only)."""
