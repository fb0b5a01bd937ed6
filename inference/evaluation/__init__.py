"""Development only (not in the extension): dance-quality metrics and the ``evaluate`` command."""
