"""read_raw on every real RAW of ../shared/data/raw, and the documented error for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from rddm.errors import CorruptRawError, InputError, NotRawError
from rddm.raw import read_raw
from tests.conftest import SHARED_DATA, shared_data

REAL_RAWS = sorted(
    p.relative_to(SHARED_DATA / "raw").as_posix()
    for p in (SHARED_DATA / "raw").rglob("*")
    if p.is_file() and p.suffix.lower() not in (".json", ".raw")
) or ["(shared data absent)"]


@pytest.mark.parametrize("name", REAL_RAWS)
def test_real_raw_matches_raw_info(name, raw_info):
    path = shared_data("raw", name)
    recorded = next(entry for entry in raw_info if entry["path"] == f"raw/{name}")
    with pytest.warns() if recorded["file"] in _NO_MATRIX else _no_warning():
        image = read_raw(path)
    assert image.cfa_pattern == recorded["cfa"]
    assert image.cfa.shape == tuple(recorded["visible_shape"])
    assert image.cfa.dtype == np.float32
    assert 0.0 <= image.cfa.min() and image.cfa.max() <= 1.0
    assert image.white_level == recorded["white"]
    pattern = recorded["raw_pattern"]
    expected_black = [recorded["black"][index] for row in pattern for index in row]
    assert list(image.black_level) == expected_black
    wb = recorded["camera_wb"]
    if wb[0] > 0:  # the D30 records -1 ("unknown"): the reader falls back to daylight gains
        np.testing.assert_allclose(image.wb_gains, np.array(wb[:3]) / wb[1], rtol=2e-3)
    assert image.wb_gains[1] == 1.0 and min(image.wb_gains) > 0
    assert image.xyz_to_cam.shape == (3, 3) and np.any(image.xyz_to_cam != 0)
    # Normalisation: a pixel equal to white maps to 1, black to 0.
    assert image.cfa.mean() == pytest.approx(
        (recorded["mean"] - np.mean(recorded["black"])) / (recorded["white"] - np.mean(recorded["black"])),
        rel=0.02,
    )
    if recorded.get("iso"):
        assert image.exif.iso == recorded["iso"]
    assert (image.exif.make, image.exif.model) == (recorded["make"], recorded["model"])


_NO_MATRIX = {"RAW_KODAK_DC50.KDC", "test_1920x1080_10bit_RGGB.dng"}


class _no_warning:
    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def test_matrix_sources(raw_info):
    assert read_raw(shared_data("raw/native/canon_eos_d30_imagemeta.CRW")).color_matrix_source == "libraw"
    gopro = read_raw(shared_data("raw/gopro_crops/gopro_hero7_GOPR9231_crop_BGGR.dng"))
    assert gopro.color_matrix_source == "dng"
    np.testing.assert_allclose(gopro.xyz_to_cam[0], [1.0344, -0.421, -0.062], atol=1e-3)
    with pytest.warns(UserWarning, match="sRGB-equivalent"):
        kodak = read_raw(shared_data("raw/native/RAW_KODAK_DC50.KDC"))
    assert kodak.color_matrix_source == "default"


def test_exif_facts_of_a_gopro():
    exif = read_raw(shared_data("raw/gopro_crops/gopro_hero7_GOPR9231_crop_BGGR.dng")).exif
    assert (exif.make, exif.model, exif.iso) == ("GoPro", "HERO7 Black", 252.0)
    assert exif.exposure_time == pytest.approx(1 / 576, rel=1e-3)
    assert exif.f_number == 2.8 and exif.focal_length == 3.0
    assert exif.datetime == "2018:09:26 08:25:27"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_jpeg_renamed_nef_is_not_a_raw(tmp_path):
    fake = tmp_path / "holiday.NEF"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(fake, format="JPEG")
    with pytest.raises(NotRawError, match=r"holiday\.NEF: a JPEG image, not a camera RAW file"):
        read_raw(fake)
    assert _listing(tmp_path) == ["holiday.NEF"]


def test_empty_file(tmp_path):
    (tmp_path / "empty.CR2").write_bytes(b"")
    with pytest.raises(NotRawError, match="empty file"):
        read_raw(tmp_path / "empty.CR2")


def test_random_bytes_without_raw_name(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(NotRawError, match="not a camera RAW file that LibRaw recognises"):
        read_raw(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    "name",
    [
        "raw/native/canon_eos_d30_imagemeta.CRW",
        "raw/gopro_crops/gopro_hero6_GOPR0024_crop_RGGB.dng",
    ],
)
@pytest.mark.parametrize("fraction", [0.5, 0.02])
def test_truncated_raw_is_corrupt_and_libraw_stays_quiet(name, fraction, tmp_path, capfd):
    source = shared_data(name)
    truncated = tmp_path / source.name
    truncated.write_bytes(source.read_bytes()[: int(source.stat().st_size * fraction)])
    with pytest.raises(CorruptRawError, match="truncated or damaged"):
        read_raw(truncated)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert _listing(tmp_path) == [source.name]


def test_directory_and_missing_path(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_raw(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_raw(tmp_path / "gone.CR2")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("name", ["my photo.dng", 'it\'s "quoted" $HOME `x`.dng', "été 東京 ü.dng"])
def test_hostile_path_names(name, tmp_path):
    source = shared_data("raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng")
    target = tmp_path / name
    shutil.copyfile(source, target)
    assert read_raw(target).cfa_pattern == "RGGB"
    with pytest.raises(InputError, match="no such file"):
        read_raw(tmp_path / ("missing " + name))


def test_x_trans_mosaic_is_refused_as_unsupported(tmp_path):
    from rddm.errors import UnsupportedSensorError
    from rddm.io.dng import metadata_tags

    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1]
    xtrans += [1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    tags = metadata_tags(wb_gains=(2, 1, 1.5), xyz_to_cam=np.eye(3), exif=None, orientation=1)
    tags += [(33421, 3, 2, (6, 6), True), (33422, 1, 36, xtrans, True), (50717, 4, 1, 4095, True)]
    mosaic = (np.random.default_rng(0).uniform(size=(96, 96)) * 4000).astype(np.uint16)
    path = tmp_path / "fuji.dng"
    tifffile.imwrite(path, mosaic, photometric=32803, subfiletype=0, extratags=tags)
    with pytest.raises(UnsupportedSensorError, match="X-Trans sensor .CFA 6x6. is not supported"):
        read_raw(path)
