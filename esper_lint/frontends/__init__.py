"""The doors into the engine: the command line, the flake8 plugin, and what they share (file
discovery, the parallel runner and its cache, baselines, output formats, the inventory). Each only
adapts `engine.analyse_source`; none judges anything itself.
"""
