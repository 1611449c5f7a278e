"""The engine process: a local HTTP service holding the model (``rddm engine``), and its client.

Import the parts you need: ``rddm.server.client`` (no torch) or ``rddm.server.app`` / ``service``.
"""
