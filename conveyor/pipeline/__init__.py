"""Pipeline format: YAML parsing, the validated model, and how a job resolves into steps."""
