"""Training data: readers for dance datasets, retargeting, timing, augmentation and the cache.

Two separate paths (never importing ``bpy``):

* raw data -> cache: :mod:`.tang2018`, :mod:`.aistpp` and :mod:`.folder` read a
  dataset into :class:`.clip.Clip` objects (SMPL poses at 30 fps, z-up metres,
  with their music); :mod:`.preprocess` computes the music features and writes
  one compact cache file (:func:`.cache.write_cache`).
* cache -> training windows: :class:`.cache.DanceCache` reads it back and
  :class:`.cache.WindowSampler` draws augmented (T, 151) motion / (T, 35) music
  windows for :mod:`inference.training.train`.
"""
