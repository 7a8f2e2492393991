"""SPEF (IEEE 1481) for OpenSTA: routed RC trees from qrouter, or placement-stage estimates (eda.wire_estimate).

Written in pF / ohm / ns with `:` between instance and pin and `[]` bus bits. Net names follow the
netlist: qrouter and DEF write `ra[7]` or `x_bF$buf3` for internal nets that the netlist spells
`ra_7_` / `x_bF_buf3`, so each name is matched against the netlist's own nets (ports keep their brackets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from eda.parse.def_file import Design
from eda.parse.lef import Lef
from eda.parse.liberty import Library
from eda.parse.netlist import Netlist
from eda.parse.rc_tree import RcNet

# OpenSTA rejects zero-ohm resistors; qrouter writes them for pins on the same grid point.
MIN_RES_OHM = 1e-3
# Sink pins hang off their tree node through this resistor, so several pins may share a node.
PIN_RES_OHM = 1e-3
# The routing layer whose per-µm RC the wire estimates assume (the first vertical layer on osu018).
ESTIMATE_LAYER = "metal2"


def netlist_name(name: str, netlist: Netlist) -> str | None:
    """The netlist's spelling of a DEF/qrouter net name, or None when the netlist has no such net."""
    if name in netlist.nets:
        return name
    fixed = re.sub(r"[\[\]$]", "_", name)
    return fixed if fixed in netlist.nets else None


def _pin_ref(pin: str, netlist: Netlist) -> tuple[str, str] | None:
    """('*P port' or '*I inst:pin', direction I/O) for an 'INST/PIN' or 'PIN/port' name."""
    inst, _, name = pin.partition("/")
    if inst == "PIN":
        if name not in netlist.ports:
            return None
        # A port's direction in SPEF is its direction as seen from inside the design.
        return f"{name}", "I" if netlist.ports[name] == "input" else "O"
    if inst not in netlist.instances:
        return None
    return f"{inst}:{name}", ""


def write_spef(nets: Iterable[RcNet], netlist: Netlist, library: Library) -> tuple[str, int]:
    """(SPEF text, number of nets left out because the netlist or library does not know them)."""
    out = [
        '*SPEF "IEEE 1481-1998"',
        f'*DESIGN "{netlist.top}"',
        '*DATE ""\n*VENDOR "mixkit"\n*PROGRAM "eda.spef"\n*VERSION "1"\n*DESIGN_FLOW ""',
        "*DIVIDER /\n*DELIMITER :\n*BUS_DELIMITER [ ]",
        "*T_UNIT 1 NS\n*C_UNIT 1 PF\n*R_UNIT 1 OHM\n*L_UNIT 1 HENRY",
        "",
    ]
    skipped = 0
    for net in nets:
        name = netlist_name(net.name, netlist)
        refs = [_pin_ref(p, netlist) for _, p in net.pins]
        if name is None or any(r is None for r in refs):
            skipped += 1
            continue
        conn, caps, ress = [], [], []
        node_names = [refs[0][0]] + [f"{name}:{k}" for k in range(1, len(net.parent))]
        for k, (ref, direction) in enumerate(refs):
            if ref.count(":") and not direction:
                inst, pin = ref.split(":")
                cell = library.cells.get(netlist.instances[inst][0])
                direction = "O" if cell and cell.pins.get(pin) and cell.pins[pin].direction == "output" else "I"
            conn.append(f"{'*I' if ':' in ref else '*P'} {ref} {direction}")
            if k > 0:
                ress.append((node_names[net.pins[k][0]], ref, PIN_RES_OHM))
        for k in range(1, len(net.parent)):
            caps.append((node_names[k], net.cap[k]))
            ress.append((node_names[net.parent[k]], node_names[k], max(net.res[k], MIN_RES_OHM)))
        out.append(f"*D_NET {name} {sum(net.cap):.6g}")
        out.append("*CONN")
        out.extend(conn)
        out.append("*CAP")
        out.extend(f"{i} {n} {c:.6g}" for i, (n, c) in enumerate(caps, 1))
        out.append("*RES")
        out.extend(f"{i} {a} {b} {r:.6g}" for i, (a, b, r) in enumerate(ress, 1))
        out.append("*END\n")
    return "\n".join(out), skipped


def pin_xy(design: Design, lef: Lef, inst: str, pin: str) -> tuple[float, float]:
    """A pin's position (µm): the centre of its cell (LEF pin shapes are not read), or the port's placement."""
    if inst == "PIN":
        p = design.pins[pin]
        return p.x, p.y
    c = design.components[inst]
    w, h = lef.sizes.get(c.macro, (0.0, 0.0))
    return c.x + w / 2, c.y + h / 2
