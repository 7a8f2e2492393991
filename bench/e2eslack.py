"""E2ESlack on this project's designs: pre-routing slack prediction judged against post-route OpenSTA.

    python -m bench.e2eslack [--epochs 40] [--seed 0] [--test mac8,mul8s1,pe_int8,pe_dequant_w2] [--pes pe_int8,...]

Runs (or loads from the cache) eda.flow for every design of eda.designs, trains the predictor on the
training designs (teacher forcing; each design routed on the fewest metal layers, from 3, that route every net,
so the 2.4k-cell MixPE and dequant PEs on 6), and evaluates on held-out designs against two baselines: OpenSTA with
no parasitics and OpenSTA with the placement-stage star-RC estimate. Each design is judged at its own
clock, 0.9 × its no-wire critical delay (endpoint slacks shift exactly with the clock under an ideal clock),
so that it has violations. Figures: R² of the wire-induced change (routed − no-wire) of per-pin arrival and
of endpoint slack, endpoint-slack MAE (ns), WNS/TNS (ns) and their relative errors, fast-RAT MAE (ns), and
the runtime of prediction (graph + no-wire STA + GNN + RAT) against routing + post-route STA (s).
Writes bench/results/e2eslack.json and e2eslack.png; saves the model where `python -m eda.slack` finds it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from eda.designs import ARITHMETIC, DESIGNS, PES
from eda.flow import FLOW_VERSION, LEF, LIBERTY, run_design
from eda.graph import graph_from_flow
from eda.slack import default_model_dir, predict, train
from sim.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
FLOW_CLOCK_NS = 5.0
CLOCK_FACTOR = 0.9
DEFAULT_TEST = ("mac8", "mul8s1", "pe_int8", "pe_dequant_w2")


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Coefficient of determination r2_score(truth, prediction) (TimingGCN's code swaps the arguments)."""
    return float(1 - ((y - yhat) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-30))


def scaling_exponents(per_design: dict) -> dict[str, float]:
    """Slope k of log(seconds) against log(cells) for routing + post-route STA and for prediction."""
    cells = np.log([r["cells"] for r in per_design.values()])
    return {
        key: float(np.polyfit(cells, np.log([r[f"{key}_seconds"] for r in per_design.values()]), 1)[0])
        for key in ("route_plus_sta", "predict")
    }


def evaluate(model, data, names) -> dict:
    pins = data["pin"]
    shift = data.eval_clock - data.clock_ns
    t0 = time.perf_counter()
    pred = predict(model, data, names, data.eval_clock)
    ep = pred.endpoint
    slack = {m: pins[f"slack_{m}"].numpy()[ep] + shift for m in ("none", "estimate", "routed")}
    ps = pred.slack[ep]
    at_none, at_routed, at_est = (pins[f"at_{m}"].numpy() for m in ("none", "routed", "estimate"))
    ok = ~np.isnan(at_routed) & ~np.isnan(at_none) & ~np.isnan(at_est)
    true_d, pred_d, est_d = (at_routed - at_none)[ok], (pred.arrival - at_none)[ok], (at_est - at_none)[ok]

    def totals(s):
        return float(min(0.0, s.min())), float(np.minimum(s, 0).sum())

    wns = {k: totals(v)[0] for k, v in {**slack, "predicted": ps}.items()}
    tns = {k: totals(v)[1] for k, v in {**slack, "predicted": ps}.items()}
    rel = lambda a, b: abs(a - b) / abs(b) if b else float(a != b)  # noqa: E731
    return {
        "pins": len(names),
        "endpoints": int(ep.sum()),
        "eval_clock_ns": data.eval_clock,
        "r2_pin_dat": {"predicted": r2(true_d, pred_d), "estimate": r2(true_d, est_d)},
        "r2_endpoint_dslack": {
            "predicted": r2(slack["routed"] - slack["none"], ps - slack["none"]),
            "estimate": r2(slack["routed"] - slack["none"], slack["estimate"] - slack["none"]),
        },
        "r2_endpoint_slack": {"predicted": r2(slack["routed"], ps), "none": r2(slack["routed"], slack["none"])},
        "mae_endpoint_slack_ns": {
            "predicted": float(np.abs(ps - slack["routed"]).mean()),
            "none": float(np.abs(slack["none"] - slack["routed"]).mean()),
            "estimate": float(np.abs(slack["estimate"] - slack["routed"]).mean()),
        },
        "wns_ns": wns,
        "tns_ns": tns,
        "wns_rel_err": {k: rel(wns[k], wns["routed"]) for k in ("predicted", "none", "estimate")},
        "tns_rel_err": {k: rel(tns[k], tns["routed"]) for k in ("predicted", "none", "estimate")},
        "rat_mae_ns": float(np.nanmean(np.abs(pred.rat[ep] - (pins.required_routed.numpy()[ep] + shift)))),
        "gnn_rat_seconds": time.perf_counter() - t0,
        "_scatter": (slack["routed"].tolist(), ps.tolist(), slack["estimate"].tolist()),
    }


def _plot(path: Path, scatters: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
    for name, (true, pred, est) in scatters.items():
        axes[0].scatter(true, pred, s=7, alpha=0.6, label=name)
        axes[1].scatter(true, est, s=7, alpha=0.6, label=name)
    for ax, title in zip(axes, ("E2ESlack prediction", "star-RC estimate STA (baseline)"), strict=True):
        lo = min(min(min(t), min(p), min(e)) for t, p, e in scatters.values())
        hi = max(max(max(t), max(p), max(e)) for t, p, e in scatters.values())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel("post-route OpenSTA endpoint slack (ns)")
        ax.set_title(title)
    axes[0].set_ylabel("pre-route slack (ns)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e2eslack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--epochs", type=int, default=40, help="training epochs over the training designs (default 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model initialisation and data order")
    p.add_argument("--test", default=",".join(DEFAULT_TEST), help="held-out designs, comma-separated")
    p.add_argument(
        "--pes",
        default=",".join(PES),
        help=f"PE designs to include, comma-separated, '' for none (default {','.join(PES)}; the MixPE and dequant "
        "PEs take 10-20 minutes each to place and route the first time)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    from tqdm import tqdm

    names = list(ARITHMETIC) + [pe for pe in args.pes.split(",") if pe]
    test = [t for t in args.test.split(",") if t in names]
    unknown = [t for t in args.test.split(",") + args.pes.split(",") if t and t not in DESIGNS]
    if unknown or not test:
        raise SystemExit(f"bench.e2eslack: unknown or excluded test design(s) {unknown or args.test}")
    flows, graphs = {}, {}
    for name in tqdm(names, desc="flow+graph", unit="design"):
        flows[name] = run_design(name, FLOW_CLOCK_NS)
        t0 = time.perf_counter()
        data, pin_names = graph_from_flow(flows[name].work_dir, LIBERTY, LEF)
        data.graph_seconds = time.perf_counter() - t0
        ep = data["pin"].endpoint
        critical = FLOW_CLOCK_NS - float(np.nanmin(data["pin"].slack_none.numpy()[ep.numpy()]))
        data.eval_clock = round(CLOCK_FACTOR * critical, 4)
        graphs[name] = (data, pin_names)
    train_names = [n for n in names if n not in test]
    t0 = time.perf_counter()
    model = train([graphs[n][0] for n in train_names], epochs=args.epochs, seed=args.seed)
    train_s = time.perf_counter() - t0
    model.save_pretrained(default_model_dir())

    per_design, scatters = {}, {}
    for name in test + train_names:
        data, pin_names = graphs[name]
        res = evaluate(model, data, pin_names)
        scatter = res.pop("_scatter")
        if name in test:
            scatters[name] = scatter
        f = flows[name]
        res["cells"] = f.cells
        res["route_layers"] = f.route_layers
        res["route_failures"] = f.route_failures
        res["split"] = "test" if name in test else "train"
        res["route_plus_sta_seconds"] = (
            f.stage_seconds["route"] + f.stage_seconds["spef"] + f.stage_seconds["sta_routed"]
        )
        res["predict_seconds"] = data.graph_seconds + f.stage_seconds["sta_none"] + res.pop("gnn_rat_seconds")
        res["speedup"] = res["route_plus_sta_seconds"] / res["predict_seconds"]
        per_design[name] = res

    print(f"trained on {len(train_names)} designs in {train_s:.0f} s; held-out: {', '.join(test)}")
    head = f"{'design':14s} {'cells':>5s} {'lay':>3s} {'R2 dAT':>7s} {'(est)':>6s} {'R2 dSlk':>7s} {'(est)':>6s} "
    head += f"{'MAE pred/none/est ns':>22s} {'WNS pred/route ns':>18s} {'TNS pred/route ns':>19s} {'speedup':>7s}"
    print(head)
    for name, r in per_design.items():
        m = r["mae_endpoint_slack_ns"]
        print(
            f"{name + ('*' if r['split'] == 'test' else ''):14s} {r['cells']:5d} {r['route_layers']:3d} "
            f"{r['r2_pin_dat']['predicted']:7.3f} "
            f"{r['r2_pin_dat']['estimate']:6.3f} {r['r2_endpoint_dslack']['predicted']:7.3f} "
            f"{r['r2_endpoint_dslack']['estimate']:6.3f} "
            f"{m['predicted']:6.4f}/{m['none']:6.4f}/{m['estimate']:6.4f} "
            f"{r['wns_ns']['predicted']:8.3f}/{r['wns_ns']['routed']:8.3f} "
            f"{r['tns_ns']['predicted']:9.2f}/{r['tns_ns']['routed']:9.2f} {r['speedup']:6.1f}x"
        )
    print("(* held out; R² of the wire-induced change routed − no-wire; est = star-RC estimate STA baseline)")
    scaling = scaling_exponents(per_design)
    print(
        f"runtime ~ cells^k: routing + post-route STA k = {scaling['route_plus_sta']:.2f}, "
        f"prediction k = {scaling['predict']:.2f} (least squares in log-log over all designs)"
    )
    report = {
        "settings": {
            "epochs": args.epochs, "seed": args.seed, "test": test, "train": train_names,
            "flow_clock_ns": FLOW_CLOCK_NS, "clock_factor": CLOCK_FACTOR,
            "flow_version": FLOW_VERSION, "train_seconds": train_s,
        },
        "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
        "scaling_exponent": scaling,
        "designs": per_design,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    atomic_write(RESULTS / "e2eslack.json", json.dumps(report, indent=2) + "\n")
    _plot(RESULTS / "e2eslack.png", scatters)
    print(f"wrote {RESULTS / 'e2eslack.json'} and e2eslack.png; model in {default_model_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
