"""Service standards (服务标准): standards, immutable published versions, clauses and their
penalty rules, and acknowledgements (确认签署)."""
