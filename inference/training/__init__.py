"""Development only (not in the extension): data sets, preprocessing and training."""
