"""The Dask extra: the same embeddings as the in-process pipeline, computed on a local cluster."""
import builtins
import os

import numpy as np
import pytest

from scratchface.recognition import dask_pipeline
from scratchface.recognition.pipeline import embed_aligned, embed_folder


def _photos(folder):
    """Two faces (skimage's astronaut and its mirror image), a face-less grey square, a truncated JPEG."""
    from PIL import Image
    from skimage.data import astronaut

    face = np.ascontiguousarray(astronaut()[:256, 96:352])
    Image.fromarray(face).save(folder / "a.png")
    Image.fromarray(np.ascontiguousarray(face[:, ::-1])).save(folder / "b.png")
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(folder / "c.png")
    (folder / "d.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return _photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def expected(photos):
    """The in-process, streaming pipeline on the same files: the reference."""
    return list(embed_folder(photos, batch_size=2, progress=False))


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("dask.bag")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _assert_same_items(items, expected):
    assert [os.path.basename(i.path) for i in items] == [os.path.basename(e.path) for e in expected]
    for item, ref in zip(items, expected):
        assert item.embeddings.shape == ref.embeddings.shape
        np.testing.assert_allclose(item.embeddings, ref.embeddings, rtol=0, atol=1e-5)
        np.testing.assert_allclose(item.boxes, ref.boxes, rtol=0, atol=1e-4)
        assert (item.error is None) == (ref.error is None)


def test_folder_on_local_cluster_equals_embed_folder(photos, expected, client):
    assert [e.embeddings.shape for e in expected] == [(1, 128), (1, 128), (0, 128), (0, 128)]
    items = dask_pipeline.embed_folder_dask(photos, batch_size=2, client=client)
    _assert_same_items(items, expected)
    assert "not a readable image" in items[3].error
    # a face and its mirror image: the same person (dlib's threshold 0.6), not the same vector
    distance = np.linalg.norm(items[0].embeddings[0] - items[1].embeddings[0])
    assert 0.01 < distance < 0.6


def test_bag_partitions_and_path_list(photos, expected, client):
    files = [str(photos / name) for name in ("d.jpg", "c.png", "b.png")]
    bag = dask_pipeline.embedding_bag(files, batch_size=2)
    assert bag.npartitions == 2                       # 3 files, 2 per task
    items = client.compute(bag).result()
    by_name = {os.path.basename(e.path): e for e in expected}
    _assert_same_items(items, [by_name[os.path.basename(f)] for f in files])   # the given order is kept
    # without a client: Dask's local threads, same result
    _assert_same_items(dask_pipeline.embed_folder_dask(str(photos / "a.png"), batch_size=1), expected[:1])
    assert dask_pipeline.embed_folder_dask(photos, extensions=(".tif",)) == []


def test_chips_array_equals_embed_aligned(photos, expected, client):
    da = pytest.importorskip("dask.array")
    from scratchface.detection.mtcnn import detect_faces
    from scratchface.image import as_rgb, read_image
    from scratchface.recognition.pipeline import align_dlib

    rgb = as_rgb(read_image(photos / "a.png"))
    chip = align_dlib(rgb, detect_faces(rgb).landmarks)[0]
    chips = np.stack([chip, chip[:, ::-1], chip])     # 3 chips, chunks of 2 and 1
    lazy = dask_pipeline.embed_chips_dask(da.from_array(chips, chunks=(2, 150, 150, 3)))
    assert lazy.shape == (3, 128) and lazy.chunks[0] == (2, 1)
    got = client.compute(lazy).result()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[[0, 2]], expected[0].embeddings[[0, 0]], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[1], embed_aligned(chips[1]).ravel(), rtol=0, atol=1e-5)
    assert np.linalg.norm(got[1] - got[0]) > 0.01     # the mirror chip is another input
    with pytest.raises(ValueError, match=r"chips must have shape \(N, 150, 150, 3\)"):
        dask_pipeline.embed_chips_dask(np.zeros((2, 112, 112, 3), np.float32))


def test_bad_arguments(tmp_path):
    pytest.importorskip("dask.bag")
    with pytest.raises(FileNotFoundError, match="no such folder or file"):
        dask_pipeline.embedding_bag(tmp_path / "missing")
    with pytest.raises(TypeError, match="path_or_paths must be a folder, a file, or an iterable"):
        dask_pipeline.embedding_bag(3)
    with pytest.raises(ValueError, match="batch_size"):
        dask_pipeline.embedding_bag(tmp_path, batch_size=0)
    with pytest.raises(ValueError, match="max_faces"):
        dask_pipeline.embedding_bag(tmp_path, max_faces=0)


def test_without_dask_the_error_names_the_extra(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith("dask."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    monkeypatch.setattr("importlib.import_module", lambda name: no_dask(name))
    with pytest.raises(ImportError, match=r"pip install scratchface\[dask\]"):
        dask_pipeline.embed_folder_dask(tmp_path)
    with pytest.raises(ImportError, match=r"pip install scratchface\[dask\]"):
        dask_pipeline.embed_chips_dask(np.zeros((1, 150, 150, 3)))


def test_embed_files_without_dask(photos):
    items = dask_pipeline.embed_file_list([photos / "d.jpg", photos / "c.png"], batch_size=4)
    assert [os.path.basename(i.path) for i in items] == ["d.jpg", "c.png"]
    assert [i.embeddings.shape for i in items] == [(0, 128), (0, 128)]
    assert [i.boxes.shape for i in items] == [(0, 4), (0, 4)]
    assert items[0].error is not None and items[1].error is None
    assert dask_pipeline.embed_file_list([]) == []
