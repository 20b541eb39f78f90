"""Where the face sets are found."""


def test_find_data_dir(tmp_path, monkeypatch):
    from scratchface.data import find_data_dir
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "setup.cfg").write_text("")
    monkeypatch.delenv("SCRATCHFACE_DATA", raising=False)
    assert find_data_dir(repo / "notebooks") is None               # no shared/data beside the repo
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert find_data_dir(repo / "notebooks") == tmp_path / "shared" / "data"
    monkeypatch.setenv("SCRATCHFACE_DATA", str(tmp_path / "elsewhere"))
    assert find_data_dir(repo) is None                             # set, but not a folder
    (tmp_path / "elsewhere").mkdir()
    assert find_data_dir(repo) == tmp_path / "elsewhere"
