"""Module mechanics, the layer modules, save/load, summary tables and bad input."""
import numpy as np
import pytest

from scratchface import nn
from scratchface.layers.conv import conv2d_reference_forward
from scratchface.nn.module import Module, Parameter


def _small_cnn(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return nn.Sequential({
        "conv": nn.Conv2d(2, 4, 3, padding=1, rng=rng, dtype=dtype), "bn": nn.BatchNorm(4, dtype=dtype),
        "relu": nn.ReLU(), "pool": nn.MaxPool2d(2), "flat": nn.Flatten(),
        "fc": nn.Dense(4 * 3 * 3, 3, rng=rng, dtype=dtype)})


# ----------------------------------------------------------------- parameters, modes, gradients
def test_named_parameters_and_buffers_follow_the_tree():
    net = _small_cnn()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.gamma", "bn.beta", "fc.weight", "fc.bias"]
    assert [name for name, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var"]
    assert net.num_params == (4 * 2 * 9 + 4) + (4 + 4) + (36 * 3 + 3)
    assert net["conv"] is net[0] and len(net) == 6


def test_train_eval_propagate_to_children():
    net = _small_cnn()
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


def test_gradients_accumulate_until_zero_grad(rng):
    net = _small_cnn()
    x = rng.standard_normal((5, 2, 6, 6)).astype(np.float32)
    dout = rng.standard_normal((5, 3)).astype(np.float32)
    net.forward(x)
    net.backward(dout)
    first = net.fc.weight.grad.copy()
    assert np.abs(first).sum() > 0
    net.forward(x)
    net.backward(dout)
    np.testing.assert_allclose(net.fc.weight.grad, 2 * first, rtol=1e-5, atol=1e-6)
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


def test_conv_module_matches_the_readable_reference(rng):
    conv = nn.Conv2d(3, 5, (3, 2), stride=2, padding=(1, 0, 1, 1), rng=1, dtype=np.float64)
    conv.bias.data[...] = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 7, 6))
    expected = conv2d_reference_forward(x, conv.weight.data, conv.bias.data, (2, 2), (1, 0, 1, 1))
    out = conv.forward(x)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert out.shape[1:] == conv.output_shape((3, 7, 6))


def test_dense_and_float32_default(rng):
    fc = nn.Dense(4, 2, rng=0)
    assert fc.weight.data.dtype == np.float32 and fc.weight.shape == (4, 2)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(fc.forward(x), x @ fc.weight.data + fc.bias.data, rtol=1e-6)


def test_layer_modules_shapes_against_forward(rng):
    """output_shape (computed from the hyper-parameters) agrees with the real forward for every wrapper."""
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    modules = [nn.Conv2d(4, 6, 3, stride=2, padding=1, rng=0), nn.MaxPool2d(3, stride=2, ceil_mode=True),
               nn.AvgPool2d(3, stride=2, padding=1), nn.L2Pool2d(3, stride=1, padding=1), nn.ReLU(),
               nn.PReLU(4), nn.Maxout(2), nn.LRN(3), nn.BatchNorm(4), nn.Dropout(0.5, rng=0), nn.Flatten(),
               nn.LocallyConnected2d(4, 3, 3, (9, 8), stride=2, rng=0), nn.L2Normalize(), nn.Softmax(),
               nn.LogSoftmax()]
    for m in modules:
        out = m.forward(x)
        assert out.shape[1:] == m.output_shape(x.shape[1:]), type(m).__name__
        assert out.dtype == np.float32
        dx = m.backward(np.ones_like(out))
        assert dx.shape == x.shape


def test_set_impl_switches_to_the_readable_reference(rng):
    from scratchface.nn.examples import lfw_subset_cnn
    net = lfw_subset_cnn(0)
    x = rng.standard_normal((3, 1, 25, 25)).astype(np.float32)
    fast = net.forward(x)
    assert net.conv1.impl == "auto"
    assert net.set_impl("reference") is net and net.pool2.impl == "reference"
    np.testing.assert_allclose(net.forward(x), fast, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="impl must be one of"):
        net.set_impl("cuda")
    with pytest.raises(ValueError, match="impl must be one of"):
        nn.Conv2d(1, 1, 3, impl="fast")


def test_flops_count_multiply_adds_by_hand():
    conv = nn.Conv2d(3, 64, 7, stride=2, padding=3, rng=0)
    # FaceNet NN2 conv1: 112 * 112 * 64 * (7*7*3 + 1 bias) = 118.8M, the table's "119M"
    assert conv.flops((3, 224, 224)) == 112 * 112 * 64 * 148
    assert round(conv.flops((3, 224, 224)) / 1e6) == 119
    assert nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False, rng=0).flops((3, 224, 224)) == 112 * 112 * 64 * 147
    assert nn.Dense(1024, 128, rng=0).flops((1024,)) == 128 * 1025     # NN2 "fully conn": 0.1M
    assert nn.Dense(1024, 128, rng=0).num_params == 131200              # the table's 131K
    for m in (nn.MaxPool2d(3, stride=2), nn.ReLU(), nn.LRN(5), nn.L2Pool2d(3, stride=1, padding=1)):
        assert m.flops((64, 56, 56)) == 0
    lc = nn.LocallyConnected2d(3, 4, 3, (6, 6), rng=0)
    assert lc.num_params == 4 * 4 * (4 * 3 * 9) + 4 * 4 * 4 and lc.flops((3, 6, 6)) == 4 * 4 * 4 * 28


def test_batchnorm_running_stats_update_in_place_and_eval(rng):
    bn = nn.BatchNorm(3, momentum=0.5, dtype=np.float64)
    stats = bn.running_mean
    x = rng.standard_normal((8, 3, 2, 2)) * 2 + 1
    bn.forward(x)
    assert bn.running_mean is stats
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    bn.eval()
    out = bn.forward(x)
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_dropout_is_seeded_and_off_in_eval(rng):
    x = np.ones((4, 50), dtype=np.float32)
    a = nn.Dropout(0.5, rng=3).forward(x)
    b = nn.Dropout(0.5, rng=3).forward(x)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 2.0}
    d = nn.Dropout(0.5, rng=3).eval()
    np.testing.assert_array_equal(d.forward(x), x)


def test_astype_converts_parameters_and_buffers():
    net = _small_cnn().astype(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net.bn.running_var.dtype == np.float64


def test_to_cpu_keeps_numpy_and_bad_device():
    net = _small_cnn()
    assert net.to("cpu") is net and isinstance(net.conv.weight.data, np.ndarray)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu'"):
        net.to("cuda")


@pytest.mark.gpu
def test_to_gpu_runs_forward_and_backward_on_cupy(rng):
    from scratchface.backend import cupy_available, to_device, to_host
    if not cupy_available():
        pytest.skip("CuPy with a CUDA GPU not available")
    net = _small_cnn(dtype=np.float64)
    x = rng.standard_normal((4, 2, 6, 6))
    expected = net.forward(x)
    net.to("gpu")
    out = net.forward(to_device(x))
    np.testing.assert_allclose(to_host(out), expected, rtol=1e-10)
    assert net.backward(out * 0 + 1).shape == x.shape


# ----------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path, rng):
    net = _small_cnn(seed=0)
    net.forward(rng.standard_normal((4, 2, 6, 6)).astype(np.float32))       # moves the running stats
    path = nn.save(net, tmp_path / "net")
    assert path.endswith(".npz")
    other = _small_cnn(seed=1)
    assert not np.array_equal(other.conv.weight.data, net.conv.weight.data)
    weight_array = other.conv.weight.data
    nn.load(other, path)
    assert other.conv.weight.data is weight_array                         # filled in place
    for (name, a), (_, b) in zip(sorted(net.state_dict().items()), sorted(other.state_dict().items())):
        np.testing.assert_array_equal(a, b, err_msg=name)
    with np.load(path, allow_pickle=False) as data:                      # plain arrays, no pickle
        assert set(data.files) == set(net.state_dict())


def test_load_errors(tmp_path):
    net = _small_cnn()
    path = nn.save(net, tmp_path / "net.npz")
    bigger = nn.Sequential({"conv": nn.Conv2d(2, 4, 3, padding=1, rng=0)})
    with pytest.raises(KeyError, match=r"unexpected keys \['bn.beta'"):
        nn.load(bigger, path)
    extra = nn.Sequential(_small_cnn(), nn.Dense(3, 2, rng=0))
    with pytest.raises(KeyError, match="missing keys"):
        nn.load(extra, path)
    wrong = _small_cnn()
    wrong.fc = nn.Dense(36, 5, rng=0)
    with pytest.raises(ValueError, match=r"shape mismatch for 'fc.weight': the module has \(36, 5\)"):
        nn.load(wrong, path)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        nn.load(net, tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="model must be a scratchface.nn Module"):
        nn.save({"w": np.zeros(3)}, tmp_path / "x.npz")
    partial = nn.Sequential({"conv": nn.Conv2d(2, 4, 3, padding=1, rng=5)})
    nn.load(partial, path, strict=False)
    np.testing.assert_array_equal(partial.conv.weight.data, net.conv.weight.data)


# ----------------------------------------------------------------- summary
def test_summary_table_lists_nested_layers_and_totals():
    net = nn.Sequential({"stem": nn.Conv2d(3, 192, 3, padding=1, rng=0), "inc": nn.Inception.from_table("3a", rng=0)})
    rows = nn.summary_rows(net, (3, 28, 28))
    assert rows[0]["params"] == net.num_params and rows[0]["output_shape"] == (256, 28, 28)
    inc = next(r for r in rows if r["name"] == "inc")
    assert inc["depth"] == 1 and inc["params"] == 163696
    branch = next(r for r in rows if r["name"] == "branch_pool")
    assert branch["depth"] == 2 and branch["output_shape"] == (32, 28, 28)
    text = nn.summary(net, (3, 28, 28))
    assert "  branch3x3" in text and "Inception" in text and "(256, 28, 28)" in text
    assert text.splitlines()[-1].split()[0] == "total"
    assert f"{net.num_params:,}" in text.splitlines()[-1]


def test_print_summary_prints(capsys):
    nn.print_summary(nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.Flatten()), (1, 5, 5))
    out = capsys.readouterr().out
    assert "Conv2d" in out and "(18,)" in out


# ----------------------------------------------------------------- bad input
def test_forward_with_wrong_shape_names_the_expected_shape(rng):
    conv = nn.Conv2d(3, 4, 3, rng=0)
    with pytest.raises(ValueError, match=r"Conv2d expects input of shape \(N, 3, \*, \*\), got \(2, 4, 5, 5\)"):
        conv.forward(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d expects input of shape \(N, 3, \*, \*\), got \(3, 5, 5\)"):
        conv.forward(np.zeros((3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Dense expects input of shape \(N, 8\)"):
        nn.Dense(8, 2, rng=0).forward(np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm expects input of shape \(N, 3\)"):
        nn.BatchNorm(3).forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"Inception expects input of shape \(N, 192, \*, \*\)"):
        nn.Inception.from_table("3a", rng=0).forward(np.zeros((1, 64, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"LocallyConnected2d expects input of shape \(N, 3, 6, 6\)"):
        nn.LocallyConnected2d(3, 2, 3, (6, 6), rng=0).forward(np.zeros((1, 3, 7, 6), np.float32))
    with pytest.raises(TypeError, match="Conv2d has float32 parameters but x is float64"):
        conv.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(TypeError, match="floating point dtype"):
        conv.forward(np.zeros((1, 3, 5, 5), np.int32))
    with pytest.raises(ValueError, match="NaN or infinity"):
        conv.forward(np.full((1, 3, 5, 5), np.nan, np.float32))
    # the values are the layer functions' to check (the modules check shapes and dtypes): every module still refuses
    for module, shape in ((nn.Dense(8, 2, rng=0), (2, 8)), (nn.Inception.from_table("3a", rng=0), (1, 192, 6, 6)),
                          (nn.LocallyConnected2d(3, 2, 3, (6, 6), rng=0), (1, 3, 6, 6)), (nn.MaxPool2d(2), (1, 3, 4, 4)),
                          (nn.L2Pool2d(3, stride=1, padding=1), (1, 3, 4, 4))):
        x = np.zeros(shape, np.float32)
        x.flat[x.size // 2] = np.inf
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            module.forward(x)


def test_backward_before_forward_and_bad_construction():
    with pytest.raises(RuntimeError, match="Conv2d.backward called before forward"):
        nn.Conv2d(1, 1, 1, rng=0).backward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="out_channels must be a positive integer"):
        nn.Conv2d(1, 0, 3)
    with pytest.raises(TypeError, match="padding must be an int"):
        nn.Conv2d(1, 1, 3, padding="same")
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="kernel_size 5 is larger than the padded input"):
        nn.Conv2d(1, 1, 5, rng=0).output_shape((1, 3, 3))
    with pytest.raises(TypeError, match="Parameter data must have a floating point dtype"):
        Parameter(np.zeros(3, np.int64))


def test_module_subclass_must_call_super_init():
    class Broken(Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(RuntimeError, match=r"must call super\(\).__init__\(\)"):
        Broken()
