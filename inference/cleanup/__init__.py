"""The clean-ups after sampling: calm in silence, the dancer's limits, beat snap, foot lock."""
