"""rddm: RAW-domain diffusion restoration (arXiv 2508.19154) for darktable."""

__version__ = "0.1.0"
