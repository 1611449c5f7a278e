"""darktable's own chain as a baseline: darktable-cli renders the mosaic DNGs with its default
demosaic and its profiled denoise (``denoiseprofile``) given the true noise profile.

Every test mosaic of one noise level is written as a real CFA DNG into one folder, and one
``darktable-cli`` call per denoise strength renders the whole folder (a call costs ~1 s of start-up,
so one per image would dominate). The history is an XMP sidecar with a single ``denoiseprofile``
entry whose parameters are packed here in darktable 4.2's layout (module version 11, 412 bytes;
:func:`check_module_layout` reads both numbers from the installed plugin when it can). Its noise
profile (``a``, ``b``) is the one the pairs were synthesized with, so darktable denoises with the
right profile; only its strength is tuned, like the other chains' denoisers.

Output is darktable's linear Rec.709 rendering (32-bit float TIFF). darktable's colour pipeline
(its own matrix handling, white balance, highlight clipping) differs from the neutral rendering the
scores use, so each output is matched to the reference by a least-squares 3x3 matrix in linear
light before encoding: an oracle that can only favour darktable.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from rddm.synth.dataset import write_mosaic_dng

# Strength grid of denoiseprofile (its "strength" slider); 0 = module off.
DARKTABLE_STRENGTHS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
DENOISEPROFILE_VERSION = 11
DENOISEPROFILE_SIZE = 412
_PLUGIN_DIRS = (
    "/usr/lib/x86_64-linux-gnu/darktable",
    "/usr/lib/aarch64-linux-gnu/darktable",
    "/usr/lib/darktable",
)


def find_darktable_cli() -> str | None:
    """darktable-cli on PATH (``RDDM_DARKTABLE_CLI`` overrides), or None."""
    return os.environ.get("RDDM_DARKTABLE_CLI") or shutil.which("darktable-cli")


def check_module_layout() -> tuple[int, int] | None:
    """(version, params size) of the installed denoiseprofile plugin, read through its
    introspection; None when the plugin cannot be loaded (another platform).

    The libraries are loaded in a child process: darktable is built with -ffast-math, and loading
    it switches the calling process's floating point to flush subnormals to zero.
    """
    for folder in _PLUGIN_DIRS:
        core, plugin = Path(folder) / "libdarktable.so", Path(folder) / "plugins" / "libdenoiseprofile.so"
        if core.is_file() and plugin.is_file():
            result = subprocess.run(
                [sys.executable, "-c", _PROBE, str(core), str(plugin)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            try:
                version, size = (int(v) for v in result.stdout.split())
            except ValueError:
                return None
            return version, size
    return None


# dt_introspection_t starts with int api_version, int params_version, char *type_name, size_t size.
_PROBE = """
import ctypes, sys
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
library = ctypes.CDLL(sys.argv[2])
library.get_introspection.restype = ctypes.c_void_p
address = library.get_introspection()
print(ctypes.c_int.from_address(address + 4).value, ctypes.c_size_t.from_address(address + 16).value)
"""


def denoiseprofile_params(shot, read, strength: float) -> bytes:
    """darktable 4.2's ``dt_iop_denoiseprofile_params_t`` (v11): its defaults (wavelets, Y0U0V0
    colour mode, flat band curves) with the given per-channel profile and strength."""
    bands, channels = 7, 6
    x = [band / (bands - 1) for band in range(bands)] * channels
    y = [0.5] * (bands * channels)
    params = struct.pack(
        "<8f3f3fi42f42f4i",
        1.0,  # radius (patch size)
        7.0,  # nbhood (search radius)
        float(strength),
        1.0,  # shadows
        0.0,  # bias
        0.0,  # scattering
        0.1,  # central pixel weight
        1.0,  # overshooting
        *map(float, shot),  # a: shot noise per R, G, B
        *map(float, read),  # b: read noise variance per R, G, B
        1,  # mode: wavelets
        *x,
        *y,
        1,  # wb_adaptive_anscombe
        1,  # fix_anscombe_and_nlmeans_norm
        1,  # use_new_vst
        1,  # wavelet colour mode: Y0U0V0
    )
    assert len(params) == DENOISEPROFILE_SIZE
    return params


def history_xmp(params: bytes, enabled: bool) -> str:
    """An XMP sidecar whose history is the one denoiseprofile entry."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/"
    darktable:xmp_version="4" darktable:history_end="1">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="denoiseprofile" darktable:enabled="{int(enabled)}"
      darktable:modversion="{DENOISEPROFILE_VERSION}" darktable:params="{params.hex()}"
      darktable:multi_name="" darktable:multi_priority="0"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def render_folder(darktable_cli: str, inputs: Path, xmp: Path, outputs: Path, config: Path) -> None:
    """Render every DNG of ``inputs`` with ``xmp`` to ``outputs/<name>.tif`` (linear Rec.709, float)."""
    outputs.mkdir(parents=True, exist_ok=True)
    command = [
        darktable_cli,
        str(inputs),
        str(xmp),
        str(outputs / "$(FILE_NAME).tif"),
        "--icc-type",
        "LIN_REC709",
        "--core",
        "--configdir",
        str(config),
        "--library",
        ":memory:",
    ]
    for setting in (
        "write_sidecar_files=never",
        "plugins/darkroom/workflow=none",  # no auto-applied exposure / filmic tone mapping
        "plugins/darkroom/chromatic-adaptation=legacy",
        "plugins/darkroom/sharpen/auto_apply=FALSE",
        "plugins/imageio/format/tiff/bpp=32",
        "plugins/imageio/format/tiff/compress=0",
    ):
        command += ["--conf", setting]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"darktable-cli failed ({result.returncode}): {last[0]}")


def match_colours(rendered: np.ndarray, target_linear: np.ndarray) -> np.ndarray:
    """The least-squares 3x3 colour matrix from ``rendered`` to ``target_linear`` (both linear
    ``(H, W, 3)``), applied and clipped: the oracle colour match."""
    source = rendered.reshape(-1, 3).astype(np.float64)
    matrix, *_ = np.linalg.lstsq(source, target_linear.reshape(-1, 3).astype(np.float64), rcond=None)
    return np.clip(source @ matrix, 0.0, 1.0).reshape(rendered.shape).astype(np.float32)


def matched_srgb(rendered: np.ndarray, pair) -> np.ndarray:
    """darktable's linear rendering of ``pair`` colour-matched to its target (linear sRGB) and
    sRGB-encoded: what the scores compare with the neutral rendering."""
    from rddm.color import camera_to_srgb_matrix, srgb_encode

    target = np.clip(pair.hq @ camera_to_srgb_matrix(pair.xyz_to_cam).T, 0.0, 1.0)
    return srgb_encode(match_colours(rendered, target))


def render_level(mosaics: dict, noise, darktable_cli: str, root: Path):
    """Render the mosaics of one noise level at every strength of the grid.

    ``mosaics`` maps a name to a Pair; ``noise`` is the level's NoiseParams (None for noise-free,
    which gets ISO 100's profile so the strength grid still means something). Yields
    ``(name, strength, linear Rec.709 (H, W, 3))``, one strength at a time, so at most one
    strength's renderings are on disk and none are kept in memory.
    """
    from rddm.synth.noise import reference_noise

    noise = noise or reference_noise(100)
    inputs = root / "in"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    for name, pair in mosaics.items():
        write_mosaic_dng(
            inputs / f"{name}.dng", pair.lq_cfa, pair.cfa_pattern, pair.wb_gains, pair.xyz_to_cam
        )
    for strength in DARKTABLE_STRENGTHS:
        xmp = root / "history.xmp"
        params = denoiseprofile_params(noise.shot, noise.read, strength if strength > 0 else 1.0)
        xmp.write_text(history_xmp(params, enabled=strength > 0))
        outputs = root / "out"
        shutil.rmtree(outputs, ignore_errors=True)
        render_folder(darktable_cli, inputs, xmp, outputs, root / "config")
        for name in mosaics:
            yield name, strength, tifffile.imread(outputs / f"{name}.tif")[..., :3].astype(np.float32)
