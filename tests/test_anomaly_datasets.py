"""Loading user datasets (.pt, .npz, DGL) and the one-line errors for absent or malformed ones."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from models.anomaly.__main__ import main
from models.anomaly.datasets import DatasetError, load_dataset


def _arrays(n=200):
    rng = np.random.default_rng(0)
    y = np.zeros(n, dtype=np.int64)
    y[:20] = 1
    return rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, n, (2, 600)), y


def test_npz_and_pt_load_the_same_graph(tmp_path):
    x, ei, y = _arrays()
    np.savez(tmp_path / "g.npz", x=x, edge_index=ei, y=y)
    torch.save(Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(ei), y=torch.from_numpy(y)), tmp_path / "g.pt")
    a = load_dataset(str(tmp_path / "g.npz"))
    b = load_dataset(str(tmp_path / "g.pt"))
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y)
    src, dst = a.edge_index
    assert (src != dst).all()  # self-loops dropped
    assert set(zip(src.tolist(), dst.tolist(), strict=True)) == set(zip(dst.tolist(), src.tolist(), strict=True))


def test_one_hot_labels_and_named_datasets_in_the_data_folder(tmp_path):
    x, ei, y = _arrays()
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(y), 2)
    torch.save({"x": torch.from_numpy(x), "edge_index": torch.from_numpy(ei), "y": one_hot}, tmp_path / "tfinance.pt")
    data = load_dataset("tfinance", data_dir=tmp_path)
    assert torch.equal(data.y, torch.from_numpy(y))


def test_absent_paper_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetError, match=rf"'reddit' not found in {tmp_path}.*put GADBench's DGL file 'reddit'"):
        load_dataset("reddit", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="neither a file nor a known dataset"):
        load_dataset("no-such-thing")
    with pytest.raises(DatasetError, match="unknown netlist dataset"):
        load_dataset("netlist-int9-trojan")


def test_dgl_file_without_dgl_names_the_fix(tmp_path):
    (tmp_path / "weibo").write_bytes(b"\x3f\xa1\xb4\x46\xf0\x4f\x2e\xdd" + bytes(64))
    try:
        import dgl  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetError, match="needs dgl: pip install dgl"):
            load_dataset("weibo", data_dir=tmp_path)
    else:
        with pytest.raises(DatasetError, match="not a readable DGL graph file"):
            load_dataset("weibo", data_dir=tmp_path)


def test_malformed_files_are_refused(tmp_path):
    x, ei, y = _arrays()
    np.savez(tmp_path / "no_y.npz", x=x, edge_index=ei)
    with pytest.raises(DatasetError, match="has no y"):
        load_dataset(str(tmp_path / "no_y.npz"))
    np.savez(tmp_path / "bad_edges.npz", x=x, edge_index=ei + 1000, y=y)
    with pytest.raises(DatasetError, match="outside 0..199"):
        load_dataset(str(tmp_path / "bad_edges.npz"))
    np.savez(tmp_path / "bad_labels.npz", x=x, edge_index=ei, y=y * 3)
    with pytest.raises(DatasetError, match="labels must be 0"):
        load_dataset(str(tmp_path / "bad_labels.npz"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DatasetError, match="not a readable torch file"):
        load_dataset(str(tmp_path / "junk.pt"))


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--dataset", "reddit", "--data-dir", str(tmp_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not found" in err and not out.exists()
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "reddit", "--method", "gin"])
    assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    x, ei, y = _arrays()
    np.savez(tmp_path / "g.npz", x=x, edge_index=ei, y=y)
    assert main(["eval", "--dataset", str(tmp_path / "g.npz"), "--out", str(out)]) == 2
    assert "run 'train' with the same options first" in capsys.readouterr().err


def test_cli_trains_on_a_user_file(tmp_path, capsys):
    x, ei, y = _arrays()
    np.savez(tmp_path / "mine.npz", x=x, edge_index=ei, y=y)
    args = ["--dataset", str(tmp_path / "mine.npz"), "--method", "mlp", "--seeds", "2", "--out", str(tmp_path / "o")]
    assert main(["train", *args, "--epochs", "4", "--no-progress"]) == 0
    assert "mine" in capsys.readouterr().out
    assert (tmp_path / "o" / "checkpoints" / "mine" / "mlp" / "seed1.pt").is_file()
