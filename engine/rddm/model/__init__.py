"""The RDDM model: RVAE, one-step diffusion UNet, CMB-LoRA, the tiled pipeline and model folders."""

from rddm.model.pipeline import Cancelled, Ends, RDDMPipeline
from rddm.model.registry import ModelLoadError, build_pipeline, load_pipeline, save_pipeline
from rddm.model.rvae import RawVAE

__all__ = [
    "Cancelled",
    "Ends",
    "ModelLoadError",
    "RDDMPipeline",
    "RawVAE",
    "build_pipeline",
    "load_pipeline",
    "save_pipeline",
]
