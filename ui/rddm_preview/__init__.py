"""The rddm preview panel (PyQt6): compare restoration strengths on a 1:1 crop of a RAW.

It talks to the rddm engine only through the engine's command line (to start it) and its HTTP API.
"""
