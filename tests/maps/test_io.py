"""paper_repro.maps.io: checked map reading (npy, npz, FITS), atomic writes, clear errors for wrong files."""
from __future__ import annotations

import numpy as np
import pytest

from paper_repro.config import SimulationConfig
from paper_repro.errors import PaperReproError
from paper_repro.maps.io import NpyWriter, check_maps, open_maps, read_fits, read_maps, write_fits


def maps(n=3, size=16, seed=0):
    return np.random.default_rng(seed).normal(0, 0.02, (n, size, size)).astype(np.float32)


def test_open_maps_and_check_maps_errors(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, maps())
    assert open_maps(good, size=16).shape == (3, 16, 16)
    with pytest.raises(PaperReproError, match="expected 8x8"):
        open_maps(good, size=8)
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    with pytest.raises(PaperReproError, match="empty"):
        open_maps(empty)
    trunc = tmp_path / "trunc.npy"
    trunc.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(PaperReproError, match=r"trunc.npy: truncated .npy file: shape \(3, 16, 16\) "
                                              r"float32 needs 3072 bytes of data, found 2972"):
        open_maps(trunc)
    header_only = tmp_path / "header.npy"
    header_only.write_bytes(good.read_bytes()[:8])
    with pytest.raises(PaperReproError, match="header.npy: damaged .npy header"):
        open_maps(header_only)
    bad = maps()
    bad[1, 2, 3] = np.nan
    nan = tmp_path / "nan.npy"
    np.save(nan, bad)
    with pytest.raises(PaperReproError, match="map 1 contains NaN"):
        open_maps(nan)
    with pytest.raises(PaperReproError, match="no such file"):
        open_maps(tmp_path / "missing.npy")
    with pytest.raises(PaperReproError, match="square"):
        check_maps(np.zeros((2, 4, 5), np.float32))


def test_npy_writer_is_atomic(tmp_path):
    path = tmp_path / "w.npy"
    with pytest.raises(RuntimeError):
        with NpyWriter(path, 4, 16) as w:
            w.write(maps(2))
            raise RuntimeError("interrupted")
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(PaperReproError, match="expected maps of shape"):
        with NpyWriter(path, 3, 16) as w:
            w.write(maps(1, 8))
    with pytest.raises(PaperReproError, match="2 of 3 maps"):
        with NpyWriter(path, 3, 16) as w:
            w.write(maps(2))
    assert not list(tmp_path.iterdir())
    with NpyWriter(path, 3, 16) as w:
        w.write(maps(3)[:1, ..., None])                      # (k, H, W, 1) accepted
        w.write(maps(3)[1:])
    np.testing.assert_array_equal(np.load(path), maps(3))
    np.save(tmp_path / "ref.npy", maps(3))                   # byte-identical to np.save
    assert path.read_bytes() == (tmp_path / "ref.npy").read_bytes()


# ----------------------------------------------------------------------- FITS and npz
def test_fits_round_trip_keeps_data_and_angle_in_lenstools_convention(tmp_path):
    from astropy.io import fits

    kappa = maps(1, 32)[0]
    cfg = SimulationConfig()
    path = write_fits(tmp_path / "k.fits", kappa, 0.866, z_source=1.0, cosmology=cfg.cosmology)
    back, angle = read_fits(path)
    assert angle == 0.866
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, kappa)
    with fits.open(path) as hdul:                 # what LensTools' loader reads: primary HDU
        assert hdul[0].header["ANGLE"] == 0.866
        assert hdul[0].header["Z"] == 1.0
        assert hdul[0].header["OMEGA_M"] == 0.26
        np.testing.assert_array_equal(hdul[0].data, kappa)
    m, a = read_maps(path)
    assert m.shape == (1, 32, 32) and a == 0.866


def test_fits_errors(tmp_path):
    from astropy.io import fits

    no_angle = tmp_path / "noangle.fits"
    fits.PrimaryHDU(maps(1, 8)[0]).writeto(no_angle)
    with pytest.raises(PaperReproError, match="no ANGLE"):
        read_fits(no_angle)
    cube = tmp_path / "cube.fits"
    h = fits.PrimaryHDU(maps(2, 8))
    h.header["ANGLE"] = 1.0
    h.writeto(cube)
    with pytest.raises(PaperReproError, match="2-D map"):
        read_fits(cube)
    nan = maps(1, 8)[0]
    nan[0, 0] = np.inf
    with pytest.raises(PaperReproError, match="NaN or inf"):
        read_fits(write_fits(tmp_path / "nan.fits", nan, 1.0))
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(PaperReproError, match="FITS"):
        read_fits(junk)
    (tmp_path / "empty.fits").write_bytes(b"")
    with pytest.raises(PaperReproError, match="empty"):
        read_fits(tmp_path / "empty.fits")
    with pytest.raises(PaperReproError, match="angle_deg"):
        write_fits(tmp_path / "x.fits", maps(1, 8)[0], -1.0)
    with pytest.raises(PaperReproError, match="one float map"):
        write_fits(tmp_path / "x.fits", maps(2, 8), 1.0)
    assert not (tmp_path / "x.fits").exists()


def test_read_npz(tmp_path):
    m = maps(4, 8)
    np.savez(tmp_path / "a.npz", maps=m, angle_deg=0.5)
    got, angle = read_maps(tmp_path / "a.npz")
    np.testing.assert_array_equal(got, m)
    assert angle == 0.5
    np.savez(tmp_path / "b.npz", kappa=m[0])               # one 2-D array, no angle
    got, angle = read_maps(tmp_path / "b.npz")
    assert got.shape == (1, 8, 8) and angle is None
    np.savez(tmp_path / "c.npz", x=m, y=m)
    with pytest.raises(PaperReproError, match="say which"):
        read_maps(tmp_path / "c.npz")
    assert read_maps(tmp_path / "c.npz", key="y")[0].shape == (4, 8, 8)
    with pytest.raises(PaperReproError, match="no array 'z'"):
        read_maps(tmp_path / "c.npz", key="z")
    (tmp_path / "d.npz").write_bytes(b"garbage")
    with pytest.raises(PaperReproError, match="not a readable .npz"):
        read_maps(tmp_path / "d.npz")
    bad = m.copy()
    bad[2, 0, 0] = np.nan
    np.savez(tmp_path / "e.npz", maps=bad)
    with pytest.raises(PaperReproError, match="map 2 contains NaN"):
        read_maps(tmp_path / "e.npz")
    with pytest.raises(PaperReproError, match="unknown map format"):
        read_maps(tmp_path / "f.txt")


# ----------------------------------------------------------------------- a wrong file where a .npy is expected
def test_fits_where_npy_expected_names_the_file_and_how_to_convert(tmp_path):
    path = write_fits(tmp_path / "kappa.fits", maps(1, 8)[0], 1.0)
    as_npy = tmp_path / "kappa.npy"                      # a FITS file under a .npy name
    as_npy.write_bytes(path.read_bytes())
    for p in (path, as_npy):
        with pytest.raises(PaperReproError) as err:
            open_maps(p)
        msg = str(err.value)
        assert msg.startswith(f"{p}: a FITS file, expected a .npy array (N, H, W); convert it with")
        assert "read_maps" in msg and "allow_pickle" not in msg and "\n" not in msg
    np.testing.assert_array_equal(read_maps(path)[0], maps(1, 8))   # the advice works


@pytest.mark.parametrize("content, what", [
    (b"0.1 0.2 0.3\n0.4 0.5 0.6\n", "a text file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file"),
    (b"\x00\xff\xfe\x01" * 8, "a binary file of unknown format"),
])
def test_other_files_where_npy_expected_say_what_they_are(tmp_path, content, what):
    path = tmp_path / "maps.npy"
    path.write_bytes(content)
    with pytest.raises(PaperReproError, match=f"maps.npy: {what}, expected a .npy array") as err:
        open_maps(path)
    assert "allow_pickle" not in str(err.value)


def test_npz_and_pickled_npy_where_npy_expected(tmp_path):
    np.savez(tmp_path / "a.npz", maps=maps())
    with pytest.raises(PaperReproError, match="a.npz: a .npz or other zip archive, expected a .npy"):
        open_maps(tmp_path / "a.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PaperReproError, match="obj.npy: holds Python objects"):
        open_maps(tmp_path / "obj.npy")
