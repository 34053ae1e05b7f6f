"""`robot-rl data export|import`: which format does what, and one sentence for each mistake."""

from __future__ import annotations

import pytest

from robot_rl.cli.main import main
from robot_rl.interop import FORMATS, converter


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_every_format_offers_what_it_declares():
    for name in FORMATS:
        for direction in ("export", "import"):
            try:
                module = converter(name, direction)
            except Exception:
                continue
            assert isinstance(getattr(module, f"{direction.upper()}_OPTIONS"), tuple)
    assert converter("dp", "export") and converter("dp", "import")
    assert converter("lerobot", "export") and converter("lerobot", "import")
    assert converter("rosbag2", "import") and converter("rerun", "export")


@pytest.mark.parametrize("argv, says", [
    (["export"], "format= (--format) is required"),
    (["export", "format=hdf5"], "format=hdf5 is unknown"),
    (["import", "format=rerun"], "format=rerun cannot be imported"),
    (["export", "format=rosbag2"], "format=rosbag2 cannot be exported"),
    (["export", "format=dp"], "out= (--out) is required"),
    (["export", "format=dp", "out=x.zarr", "topics=map.yaml"], "topics=map.yaml is not read by `robot-rl data export format=dp`"),
])
def test_mistakes_get_one_sentence(argv, says, store_path, capsys, tmp_path):
    path = str(store_path) if argv[0] == "export" else str(tmp_path / "missing")
    assert says in _error(["data", argv[0], path, *argv[1:]], capsys)


def test_output_that_exists_is_refused_and_kept(store_path, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert "already exists" in _error(["data", "export", str(store_path), "--format", "dp", f"out={out}"], capsys)
    assert (out / "keep.txt").read_text() == "mine"


def test_missing_store_is_one_sentence(tmp_path, capsys):
    assert "does not exist" in _error(["data", "export", str(tmp_path / "nope.zarr"), "format=dp",
                                       f"out={tmp_path / 'x.zarr'}"], capsys)


def test_output_to_a_url_is_refused(store_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "names a remote location" in _error(["data", "export", str(store_path), "format=dp",
                                                "out=http://127.0.0.1:9/x.zarr"], capsys)
    assert not (tmp_path / "http:").exists()  # no local http:/ folder either
